// Package limiter is limiter/UPSTREAM: a token bucket whose rate adapts
// between rate_limit.min_rate and max_rate to what the upstream accepts —
// down by adaptation_factor on 429/503/overload, up again while demand
// exceeds the rate and the upstream keeps accepting (SPEC §5). Callers wait
// for a TokenGranted message, never by sleeping.
package limiter
