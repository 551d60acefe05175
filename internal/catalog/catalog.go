package catalog

import (
	"time"
)

// Cache times of a listing. Model lists change rarely (a provider adds a
// model every few weeks), so five minutes costs one small call per upstream
// and keeps a new model's delay short. A failed fetch is retried sooner, but
// not on every request: a dead upstream gets one try per FailureTTL.
const (
	TTL        = 5 * time.Minute
	FailureTTL = 30 * time.Second
)

// Listed is one model in an upstream's own list.
type Listed struct {
	ID      string
	Created int64 // unix seconds, as the upstream gave it; 0 when it gave none
}

// Listing is what is known of one upstream's own list.
type Listing struct {
	Models  []Listed  // from the last successful fetch (kept when a later one fails)
	Fetched time.Time // of the last successful fetch; zero: none yet
	Due     time.Time // when the next fetch is due
	Err     string    // why the last fetch failed; "" when it succeeded
}

// Need says whether an upstream's listing should be fetched.
type Need int

const (
	// Fresh: within its TTL (or, after a failure, its FailureTTL).
	Fresh Need = iota
	// Stale: past due, but an earlier fetch succeeded: usable meanwhile.
	Stale
	// Missing: past due and nothing listed yet.
	Missing
)

func (n Need) String() string {
	switch n {
	case Fresh:
		return "fresh"
	case Stale:
		return "stale"
	case Missing:
		return "missing"
	}
	return "unknown"
}

// Catalog is the discovered part of the model catalog: each upstream's
// listing, and an index from model id to the upstreams that list it. A
// Catalog is never changed once built: Record returns a new one, so readers
// may share it without locks.
type Catalog struct {
	listings map[string]Listing
	served   map[string]map[string]Listed // upstream → id → entry
}

// Empty is a catalog with nothing fetched yet.
func Empty() *Catalog {
	return &Catalog{listings: map[string]Listing{}, served: map[string]map[string]Listed{}}
}

// Listing returns what is known of upstream name's list.
func (c *Catalog) Listing(name string) (Listing, bool) {
	l, ok := c.listings[name]
	return l, ok
}

// Need tells whether upstream name's list should be fetched at now.
func (c *Catalog) Need(name string, now time.Time) Need {
	l, ok := c.listings[name]
	switch {
	case ok && now.Before(l.Due):
		return Fresh
	case ok && !l.Fetched.IsZero():
		return Stale
	}
	return Missing
}

// Record returns the catalog with the outcome of fetching upstream name's
// list at now. On success models replace the old list, fresh for TTL; on
// failure the last good list stays and the next fetch is due after
// FailureTTL.
func (c *Catalog) Record(name string, now time.Time, models []Listed, err error) *Catalog {
	next := &Catalog{listings: make(map[string]Listing, len(c.listings)+1), served: make(map[string]map[string]Listed, len(c.served)+1)}
	for k, v := range c.listings {
		next.listings[k] = v
	}
	for k, v := range c.served {
		next.served[k] = v
	}
	l := c.listings[name]
	if err != nil {
		l.Due, l.Err = now.Add(FailureTTL), err.Error()
		next.listings[name] = l
		return next
	}
	l = Listing{Fetched: now, Due: now.Add(TTL)}
	ids := make(map[string]Listed, len(models))
	for _, m := range models {
		if _, dup := ids[m.ID]; dup || m.ID == "" {
			continue
		}
		ids[m.ID] = m
		l.Models = append(l.Models, m)
	}
	next.listings[name] = l
	next.served[name] = ids
	return next
}
