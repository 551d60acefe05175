package conf

import (
	"bytes"
	"net/url"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/deer-runtime/deer/internal/jsonout"
)

// RedactedValue replaces secrets in output. Validate refuses it as a
// token, so a redacted --print-config output cannot be deployed by mistake
// with a publicly known admin token.
const RedactedValue = "<redacted>"

// Clone returns a deep copy: nothing reachable from it is shared with c.
func (c *Config) Clone() *Config {
	n := *c
	if c.Upstreams != nil {
		n.Upstreams = make(map[string]Upstream, len(c.Upstreams))
		for name, u := range c.Upstreams {
			u.Models = slices.Clone(u.Models)
			u.Endpoints = slices.Clone(u.Endpoints)
			u.RateLimit = u.RateLimit.clone()
			n.Upstreams[name] = u
		}
	}
	return &n
}

// Redacted returns a copy safe to show: the admin token, when set, is
// RedactedValue, and so is the password in cluster.redis_url. Upstream API
// keys are never in the configuration (only the names of the env vars
// holding them), so upstreams are shown as they are.
func (c *Config) Redacted() *Config {
	n := c.Clone()
	if n.Server.AdminToken != "" {
		n.Server.AdminToken = RedactedValue
	}
	n.Cluster.RedisURL = redactURL(n.Cluster.RedisURL)
	if n.Upstreams == nil {
		n.Upstreams = map[string]Upstream{} // {} rather than null in JSON
	}
	return n
}

// TOML encodes c as a config file that loads back to an equal Config. For
// deerd --print-config, encode c.Redacted().
func (c *Config) TOML() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MarshalJSON writes absent lists as [] rather than null, so that a client
// may POST back what GET /config returned.
func (u Upstream) MarshalJSON() ([]byte, error) {
	type plain Upstream // without this method
	p := plain(u)
	if p.Models == nil {
		p.Models = []string{}
	}
	if p.Endpoints == nil {
		p.Endpoints = []string{}
	}
	return jsonout.Marshal(p) // not HTML-escaped: a base_url's & stays &
}

// redactURL replaces the password of a URL with RedactedValue, written as
// it is rather than percent-encoded; other URLs, and strings that do not
// parse, are returned as they are.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, set := u.User.Password(); !set {
		return s
	}
	head, rest, _ := strings.Cut(s, "://")
	authority, path, slash := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	user, _, _ := strings.Cut(authority[:at], ":")
	out := head + "://" + user + ":" + RedactedValue + authority[at:]
	if slash {
		out += "/" + path
	}
	return out
}
