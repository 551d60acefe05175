package httpapi

import "sync/atomic"

// Counters are the HTTP ingress numbers. Handler goroutines write them with
// atomic operations; the `http` actor reads them for /metrics.
type Counters struct {
	Requests atomic.Uint64
	InFlight atomic.Int64
	Rejected atomic.Uint64 // 4xx answers for bad input, auth or size
}
