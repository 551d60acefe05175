package breaker

import (
	"fmt"
	"net/url"
)

// ActorName is the SPEC §6 name of the breaker of endpoints[index] of
// upstream, breaker/UPSTREAM/ENDPOINT, where endpoints are the upstream's
// conf.Upstream.EndpointURLs(). ENDPOINT is the endpoint's host[:port],
// which reads well in /health, followed by "#index" for every endpoint but
// the first, so that two endpoints on one host get two names; an endpoint
// whose URL has no host (or an index out of range) is "endpoint-index".
// The supervision tree names the actors with it, and a worker finds the
// breaker of an endpoint in the registry by it.
func ActorName(upstream string, endpoints []string, index int) string {
	return "breaker/" + upstream + "/" + endpointName(endpoints, index)
}

func endpointName(endpoints []string, index int) string {
	if index < 0 || index >= len(endpoints) {
		return fmt.Sprintf("endpoint-%d", index)
	}
	u, err := url.Parse(endpoints[index])
	if err != nil || u.Host == "" {
		return fmt.Sprintf("endpoint-%d", index)
	}
	if index == 0 {
		return u.Host
	}
	return fmt.Sprintf("%s#%d", u.Host, index)
}
