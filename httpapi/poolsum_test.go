package httpapi_test

import (
	"net/http"
	"testing"
)

// connection_pool.max_connections is the sum of the upstreams' pools; the
// answer says so by name and shows each pool's own size.
func TestMetricsShowMaxConnectionsPerUpstreamAndTheirSum(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConnectionPool.MaxConnections = 40
	web := cfg.Upstreams["sim"]
	web.Batch, web.Models = "", nil
	cfg.Upstreams["web"] = web
	h := start(t, cfg)
	doc := h.getJSON("/metrics", http.StatusOK)
	if got := at(t, doc, "connection_pool.max_connections"); got != 80.0 {
		t.Errorf("max_connections = %v, want 80 (2 upstreams × 40)", got)
	}
	if got := at(t, doc, "connection_pool.max_connections_total"); got != 80.0 {
		t.Errorf("max_connections_total = %v, want 80", got)
	}
	per, ok := at(t, doc, "connection_pool.max_connections_per_upstream").(map[string]any)
	if !ok || len(per) != 2 || per["sim"] != 40.0 || per["web"] != 40.0 {
		t.Errorf("max_connections_per_upstream = %v, want sim: 40, web: 40", per)
	}
}
