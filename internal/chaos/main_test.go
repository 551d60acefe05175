package chaos

import (
	"testing"

	"github.com/deer-runtime/deer/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
