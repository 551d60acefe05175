package metrics

import (
	"time"

	"github.com/deer-runtime/deer/messages"
)

// history is a time-ordered list of snapshots bounded by age.
type history struct {
	snaps []messages.Snapshot
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// add appends s and drops what is older than retention at now.
func (h *history) add(now time.Time, s messages.Snapshot, retention time.Duration) {
	h.snaps = append(h.snaps, s)
	h.prune(now, retention)
}

// prune drops snapshots older than retention at now.
func (h *history) prune(now time.Time, retention time.Duration) {
	cutoff := unixSeconds(now.Add(-retention))
	i := 0
	for i < len(h.snaps) && h.snaps[i].Timestamp < cutoff {
		i++
	}
	if i > 0 {
		h.snaps = append(h.snaps[:0:0], h.snaps[i:]...)
	}
}

func (h *history) list() []messages.Snapshot {
	return append(make([]messages.Snapshot, 0, len(h.snaps)), h.snaps...)
}
