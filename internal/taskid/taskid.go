// Package taskid makes task ids: "task_" and 128 random bits from
// crypto/rand, written as 26 characters of lowercase base32 without padding
// (e.g. task_q4ytd2hkm5xw3nhbgzubsdyr5q).
//
// An id is a capability: whoever knows it can read the task's result with
// GET /v1/tasks/{id} and cancel it with DELETE. So ids must not be
// guessable from one another, and there is exactly one place that makes them.
//
// New is safe for concurrent use and takes no lock.
package taskid

import (
	"crypto/rand"
	"encoding/base32"
)

// Prefix starts every task id.
const Prefix = "task_"

// bits is the randomness in an id.
const bits = 128

// Len is the length of an id: the prefix and 26 base32 characters.
const Len = len(Prefix) + (bits+4)/5

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns a fresh task id.
func New() string {
	var raw [bits / 8]byte
	_, _ = rand.Read(raw[:]) // never fails since Go 1.24 (it crashes the program instead)
	var out [Len]byte
	copy(out[:], Prefix)
	encoding.Encode(out[len(Prefix):], raw[:])
	return string(out[:])
}
