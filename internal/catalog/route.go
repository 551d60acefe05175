package catalog

import (
	"slices"
	"sort"
	"strings"

	"github.com/deer-runtime/deer/conf"
)

// Route is where a model id goes.
type Route struct {
	Upstream string // the upstream's name
	Model    string // the model name the upstream is sent
}

// Model is one model deer can route to, as GET /v1/models lists it.
type Model struct {
	ID       string // what a client names: see the listing rule in the package doc
	Upstream string
	Model    string // the name the upstream knows it by
	Created  int64  // the upstream's own, 0 when it gave none (configured only)
}

// Resolve picks the route for model, in the order of the package doc; ups
// are the configured upstreams and def is default_upstream ("" for none).
func (c *Catalog) Resolve(ups map[string]conf.Upstream, def, model string) (Route, bool) {
	if r, ok := c.route(ups, sortedNames(ups), model); ok {
		return r, true
	}
	if def != "" {
		return Route{Upstream: def, Model: model}, true
	}
	return Route{}, false
}

// route applies rules 1 to 3: the ones that do not guess.
func (c *Catalog) route(ups map[string]conf.Upstream, names []string, model string) (Route, bool) {
	if name, rest, found := strings.Cut(model, "/"); found && rest != "" {
		if _, ok := ups[name]; ok {
			return Route{Upstream: name, Model: rest}, true
		}
	}
	for _, name := range names {
		if slices.Contains(ups[name].Models, model) {
			return Route{Upstream: name, Model: model}, true
		}
	}
	for _, name := range names {
		if _, ok := c.served[name][model]; ok {
			return Route{Upstream: name, Model: model}, true
		}
	}
	return Route{}, false
}

// List is every model deer knows, by upstream name, each upstream's
// configured models first, then the ones it listed itself. A model is
// listed once per upstream that serves it, under the id that routes back
// to that upstream (bare when it does, else "UPSTREAM/model").
func (c *Catalog) List(ups map[string]conf.Upstream) []Model {
	names := sortedNames(ups)
	var out []Model
	for _, name := range names {
		seen := make(map[string]bool)
		add := func(id string, created int64) {
			if seen[id] {
				return
			}
			seen[id] = true
			m := Model{ID: name + "/" + id, Upstream: name, Model: id, Created: created}
			if r, ok := c.route(ups, names, id); ok && r == (Route{Upstream: name, Model: id}) {
				m.ID = id
			}
			out = append(out, m)
		}
		for _, id := range ups[name].Models {
			add(id, c.served[name][id].Created)
		}
		for _, l := range c.listings[name].Models {
			add(l.ID, l.Created)
		}
	}
	return out
}

// Find is the model id names, when it routes (without default_upstream)
// to a model its upstream is known to serve: any id List gives, and the
// "UPSTREAM/model" form of each. Its ID is id as given.
func (c *Catalog) Find(ups map[string]conf.Upstream, id string) (Model, bool) {
	r, ok := c.route(ups, sortedNames(ups), id)
	if !ok {
		return Model{}, false
	}
	listed, discovered := c.served[r.Upstream][r.Model]
	if !discovered && !slices.Contains(ups[r.Upstream].Models, r.Model) {
		return Model{}, false
	}
	return Model{ID: id, Upstream: r.Upstream, Model: r.Model, Created: listed.Created}, true
}

func sortedNames(ups map[string]conf.Upstream) []string {
	names := make([]string, 0, len(ups))
	for name := range ups {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
