// Package httpab is the A/B harness of issue 12: deerd's hot OpenAI routes
// on net/http (what deerd ships) against the same routes on
// github.com/valyala/fasthttp, ingress and upstream client. It is a nested
// module (its own go.mod): fasthttp, which deerd does not use, stays out of
// deer's go.mod and build list. The numbers and the decision are in
// docs/benchmarks.md, "HTTP stack: net/http vs fasthttp (A/B)";
// scripts/httpab/run.sh re-runs the measurement.
//
//   - Ingress (ingress.go) serves POST /v1/chat/completions (JSON and SSE)
//     and /v1/embeddings natively on fasthttp, through httpapi's
//     transport-free half of those routes (httpapi.Server.OpenAITask and
//     OpenAIAnswer), so both sides run the same deer logic.
//   - Transport (transport.go) is an http.RoundTripper over fasthttp.Client,
//     for deer.WithRoundTripper.
//   - cmd/deerab serves any of the four combinations (net or fast ingress ×
//     net or fast upstream client) on deerd's configuration.
package httpab
