// Package pool is pool/UPSTREAM: it owns the upstream's HTTP transport (sized,
// timed and warmed from connection_pool) and accounts for connection leases,
// so that at most max_connections calls use the upstream at once and
// /metrics shows exact active, peak and total counts.
package pool
