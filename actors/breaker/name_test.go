package breaker

import "testing"

func TestActorName(t *testing.T) {
	eps := []string{"https://api.openai.com", "https://api.openai.com/v2", "http://10.0.0.7:8080/v1", "::not a url", "relative/path"}
	for _, c := range []struct {
		upstream  string
		endpoints []string
		index     int
		want      string
	}{
		{"openai", eps, 0, "breaker/openai/api.openai.com"},
		{"openai", eps, 1, "breaker/openai/api.openai.com#1"}, // same host: the index tells them apart
		{"openai", eps, 2, "breaker/openai/10.0.0.7:8080#2"},
		{"openai", eps, 3, "breaker/openai/endpoint-3"}, // unparsable
		{"openai", eps, 4, "breaker/openai/endpoint-4"}, // no host
		{"openai", eps, 5, "breaker/openai/endpoint-5"}, // out of range
		{"openai", eps, -1, "breaker/openai/endpoint--1"},
		{"sim", []string{"http://127.0.0.1:8001"}, 0, "breaker/sim/127.0.0.1:8001"},
		{"sim", nil, 0, "breaker/sim/endpoint-0"},
	} {
		if got := ActorName(c.upstream, c.endpoints, c.index); got != c.want {
			t.Errorf("ActorName(%q, %v, %d) = %q, want %q", c.upstream, c.endpoints, c.index, got, c.want)
		}
	}
}
