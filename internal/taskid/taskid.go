// Package taskid makes task ids: "task_" and 128 random bits from
// crypto/rand, written as 26 characters of lowercase base32 without padding
// (e.g. task_q4ytd2hkm5xw3nhbgzubsdyr5q).
//
// An id is a capability: whoever knows it can read the task's result with
// GET /v1/tasks/{id} and cancel it with DELETE. So ids must not be
// guessable from one another, and there is exactly one place that makes them.
//
// New is safe for concurrent use.
package taskid

import (
	"crypto/rand"
	"encoding/base32"
	"sync"
)

// Prefix starts every task id.
const Prefix = "task_"

// bits is the randomness in an id.
const bits = 128

// Len is the length of an id: the prefix and 26 base32 characters.
const Len = len(Prefix) + (bits+4)/5

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// pool holds crypto/rand bytes read a block at a time: one read per 256
// ids instead of one per id (a system call on kernels without the vDSO
// getrandom), which showed in the task path's profile.
var pool struct {
	sync.Mutex
	buf [256 * bits / 8]byte
	off int
}

// New returns a fresh task id.
func New() string {
	var raw [bits / 8]byte
	pool.Lock()
	if pool.off == 0 || pool.off == len(pool.buf) {
		_, _ = rand.Read(pool.buf[:]) // never fails since Go 1.24 (it crashes the program instead)
		pool.off = 0
	}
	copy(raw[:], pool.buf[pool.off:])
	clear(pool.buf[pool.off : pool.off+len(raw)]) // a used id's bytes do not stay in memory
	pool.off += len(raw)
	pool.Unlock()
	var out [Len]byte
	copy(out[:], Prefix)
	encoding.Encode(out[len(Prefix):], raw[:])
	return string(out[:])
}
