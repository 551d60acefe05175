package httpapi

import (
	"strconv"
	"strings"
)

// prefersPrometheus reports whether an Accept header ranks the Prometheus
// text or OpenMetrics formats above JSON. A scraper sends
// "application/openmetrics-text;…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
// curl sends "*/*" and gets JSON.
func prefersPrometheus(accept string) bool {
	var textQ, jsonQ float64 = -1, -1
	for _, part := range strings.Split(accept, ",") {
		mediaType, q := parseMediaRange(part)
		switch mediaType {
		case "text/plain", "application/openmetrics-text":
			textQ = max(textQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		case "*/*", "application/*":
			jsonQ = max(jsonQ, q) // JSON is the default representation
		}
	}
	return textQ > 0 && textQ > jsonQ
}

func parseMediaRange(s string) (string, float64) {
	fields := strings.Split(s, ";")
	mediaType := strings.ToLower(strings.TrimSpace(fields[0]))
	q := 1.0
	for _, p := range fields[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
	}
	return mediaType, q
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
