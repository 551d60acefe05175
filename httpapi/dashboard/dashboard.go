// Package dashboard is deerd's live dashboard, GET /dashboard: one HTML page,
// embedded in the binary, that polls GET /metrics every second (and
// /metrics/history once per snapshot interval) and draws them on canvases.
// It needs no network beyond deerd: no CDN, no external asset, no build step.
package dashboard

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// policy keeps the page to itself: its inline script and style, and
// requests to deerd only. A reference to an outside asset would fail loudly.
const policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Page returns the dashboard's HTML.
func Page() []byte { return page }

// Serve writes the page.
func Serve(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", policy)
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}
