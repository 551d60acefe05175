package bench

import (
	"os"
	"runtime"
	"testing"
)

func TestTreeUsageReadsThisProcess(t *testing.T) {
	u, err := TreeUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSS <= 0 {
		t.Errorf("peak RSS %d, want > 0", u.PeakRSS)
	}
	if _, err := TreeUsage(-1); err == nil {
		t.Error("a process that does not exist must be an error")
	}
	if n := OnlineCPUs(); n < runtime.NumCPU() {
		t.Errorf("OnlineCPUs %d < NumCPU %d", n, runtime.NumCPU())
	}
}

func TestPinPrependsTaskset(t *testing.T) {
	if got := (Pin{}).Command(0, "a", "b"); len(got) != 2 {
		t.Errorf("unpinned: %q", got)
	}
	got := Pin{Taskset: "/usr/bin/taskset"}.Command(1, "a")
	if want := []string{"/usr/bin/taskset", "-c", "1", "a"}; len(got) != 4 || got[2] != "1" || got[3] != "a" {
		t.Errorf("pinned: %q, want %q", got, want)
	}
}
