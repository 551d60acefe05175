// Package httpapi translates HTTP to runtime calls and back (SPEC §4): the
// work endpoints (/v1/tasks, the OpenAI-compatible /v1/chat/completions,
// /v1/embeddings and /v1/models, and /proxy/{upstream}/…) become tasks for
// the router, and /health, /metrics and /config are answered by asking the
// actors through the deer.Runtime. It owns no behaviour of its own.
package httpapi
