// Package limiter is limiter/UPSTREAM: a token bucket whose rate adapts
// between rate_limit.min_rate and max_rate to what the upstream accepts —
// down by adaptation_factor on 429/503/overload, up again while demand
// exceeds the rate and the upstream keeps accepting (SPEC §5) — and the
// upstream's retry budget: retries within 20% of first attempts over
// rate_limit.window_size, plus a floor. Callers wait for a TokenGranted
// message, never by sleeping; a retry over budget is answered RetryRefused
// at once.
//
// bucket.go holds the adaptation rules, budget.go the budget, actor.go the
// shell; sim_test.go runs the bucket against an upstream of hidden capacity.
package limiter
