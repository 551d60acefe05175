package httpapi_test

import (
	"net/http"
	"testing"
)

// connection_pool.max_connections is the sum of the upstreams' pools, and
// each pool's own size is under its upstream.
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
	for _, up := range []string{"sim", "web"} {
		if got := at(t, doc, "connection_pool.upstreams."+up+".max_connections"); got != 40.0 {
			t.Errorf("upstreams.%s.max_connections = %v, want 40", up, got)
		}
	}
	if ups, ok := at(t, doc, "connection_pool.upstreams").(map[string]any); !ok || len(ups) != 2 {
		t.Errorf("connection_pool.upstreams = %v, want sim and web", ups)
	}
}
