// Package metrics is the `metrics` actor: every monitoring.export_interval it
// takes a snapshot of the /metrics document, keeps monitoring.metrics_retention
// seconds of them for /metrics/history, and pushes the Prometheus text to
// monitoring.push_url when one is set.
package metrics
