// Package breaker is breaker/UPSTREAM/ENDPOINT: a circuit breaker per
// upstream endpoint. closed → open after circuit_breaker_threshold
// consecutive failures; open fails fast; after circuit_breaker_timeout (or a
// longer Retry-After) one probe goes through in half_open; its success
// closes the breaker, its failure reopens it (SPEC §5).
package breaker
