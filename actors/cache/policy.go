package cache

import (
	"container/list"
	"fmt"
)

// Policy chooses which entry a full store evicts.
type Policy int

const (
	// LRU evicts the least recently used entry (read or written).
	LRU Policy = iota
	// LFU evicts the least frequently used entry; among equals, the least
	// recently used. Frequencies do not decay: a once-popular entry stays
	// until its TTL ends it.
	LFU
	// FIFO evicts the entry inserted first; reads do not change the order.
	FIFO
)

// String returns the configuration name: "lru", "lfu" or "fifo".
func (p Policy) String() string {
	switch p {
	case LRU:
		return "lru"
	case LFU:
		return "lfu"
	case FIFO:
		return "fifo"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy reads a cache.eviction_policy value.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "lru":
		return LRU, nil
	case "lfu":
		return LFU, nil
	case "fifo":
		return FIFO, nil
	}
	return 0, fmt.Errorf("cache.eviction_policy %q: must be one of lru, lfu, fifo", s)
}

// order keeps a store's entries in eviction order. Every operation is O(1)
// except lfuOrder.push of an entry whose frequency is neither the lowest
// nor the highest, which only happens while restoring (see Store.rebuild).
type order interface {
	// push adds a new entry as the most recent one of its rank.
	push(n *node)
	// touch records a read or overwrite of n (n.Hits is already counted).
	touch(n *node)
	remove(n *node)
	// victim is the entry to evict next, or nil when empty.
	victim() *node
	// each visits entries in eviction order, next victim first, until f
	// returns false.
	each(f func(*node) bool)
}

func newOrder(p Policy) order {
	switch p {
	case LFU:
		return &lfuOrder{buckets: list.New()}
	case FIFO:
		return &listOrder{l: list.New(), moveOnTouch: false}
	default:
		return &listOrder{l: list.New(), moveOnTouch: true}
	}
}

// listOrder is LRU (moveOnTouch) or FIFO: a list whose front is the victim.
type listOrder struct {
	l           *list.List
	moveOnTouch bool
}

func (o *listOrder) push(n *node) { n.elem = o.l.PushBack(n) }

func (o *listOrder) touch(n *node) {
	if o.moveOnTouch {
		o.l.MoveToBack(n.elem)
	}
}

func (o *listOrder) remove(n *node) { o.l.Remove(n.elem); n.elem = nil }

func (o *listOrder) victim() *node {
	if e := o.l.Front(); e != nil {
		return e.Value.(*node)
	}
	return nil
}

func (o *listOrder) each(f func(*node) bool) {
	for e := o.l.Front(); e != nil; e = e.Next() {
		if !f(e.Value.(*node)) {
			return
		}
	}
}

// lfuOrder is the constant-time LFU of Shah, Mitra and Matani: a list of
// frequency buckets in ascending frequency, each an LRU list of its entries.
type lfuOrder struct {
	buckets *list.List // of *bucket, lowest frequency at the front
}

type bucket struct {
	freq  uint64
	items *list.List // of *node, least recently used at the front
}

func (o *lfuOrder) push(n *node) {
	f := n.Hits
	// Fast paths: new entries (lowest frequency) and restores (ascending).
	if back := o.buckets.Back(); back == nil || back.Value.(*bucket).freq < f {
		o.place(n, o.buckets.PushBack(&bucket{freq: f, items: list.New()}))
		return
	} else if back.Value.(*bucket).freq == f {
		o.place(n, back)
		return
	}
	for e := o.buckets.Front(); e != nil; e = e.Next() {
		switch b := e.Value.(*bucket); {
		case b.freq == f:
			o.place(n, e)
			return
		case b.freq > f:
			o.place(n, o.buckets.InsertBefore(&bucket{freq: f, items: list.New()}, e))
			return
		}
	}
}

func (o *lfuOrder) place(n *node, be *list.Element) {
	n.bucket = be
	n.elem = be.Value.(*bucket).items.PushBack(n)
}

func (o *lfuOrder) touch(n *node) {
	cur := n.bucket
	next := cur.Next()
	if next == nil || next.Value.(*bucket).freq != n.Hits {
		next = o.buckets.InsertAfter(&bucket{freq: n.Hits, items: list.New()}, cur)
	}
	o.unlink(n)
	o.place(n, next)
}

func (o *lfuOrder) remove(n *node) { o.unlink(n) }

func (o *lfuOrder) unlink(n *node) {
	b := n.bucket.Value.(*bucket)
	b.items.Remove(n.elem)
	if b.items.Len() == 0 {
		o.buckets.Remove(n.bucket)
	}
	n.elem, n.bucket = nil, nil
}

func (o *lfuOrder) victim() *node {
	if e := o.buckets.Front(); e != nil {
		return e.Value.(*bucket).items.Front().Value.(*node)
	}
	return nil
}

func (o *lfuOrder) each(f func(*node) bool) {
	for be := o.buckets.Front(); be != nil; be = be.Next() {
		for e := be.Value.(*bucket).items.Front(); e != nil; e = e.Next() {
			if !f(e.Value.(*node)) {
				return
			}
		}
	}
}
