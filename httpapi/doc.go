// Package httpapi translates HTTP to runtime calls and back: /health,
// /metrics and /config (SPEC §4). It owns no behaviour of its own: answers
// come from asking the actors through the deer.Runtime.
package httpapi
