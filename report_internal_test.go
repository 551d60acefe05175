package deer

import (
	"testing"

	"github.com/deer-runtime/deer/messages"
)

func TestAdvancedComponentsUseOnlySPECsThreeStates(t *testing.T) {
	for _, c := range []struct {
		state   string
		enabled bool
		want    string
	}{
		{messages.StateHealthy, true, "active"},
		{messages.StateDegraded, true, "active"},
		{stateRestarting, true, "restarting"},
		{stateDown, true, "restarting"},
		{messages.StateDisabled, true, "disabled"}, // every actor of it says so (e.g. nothing to do)
		{stateDown, false, "disabled"},
		{messages.StateHealthy, false, "disabled"},
	} {
		if got := advancedState(c.state, c.enabled); got != c.want {
			t.Errorf("advancedState(%q, %v) = %q, want %q", c.state, c.enabled, got, c.want)
		}
	}
}
