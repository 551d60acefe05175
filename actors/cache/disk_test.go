package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openDisk(t *testing.T, dir string, capacity int, p Policy, now time.Time) *DiskStore {
	t.Helper()
	d, err := OpenDisk(dir, capacity, p, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustGet(t *testing.T, d *DiskStore, now time.Time, key string) (string, bool) {
	t.Helper()
	e, ok, err := d.Get(now, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value), ok
}

func TestDiskPersistsAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "cache") // created on open
	d := openDisk(t, dir, 10, LRU, t0)
	if _, err := d.Put(t0, "keep", []byte("value"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(t0, "short", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(t0, "gone", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Delete("gone"); !ok || err != nil {
		t.Fatalf("delete = %v, %v", ok, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Fatal(err)
	}

	later := t0.Add(2 * time.Minute) // "short" expired while closed
	d = openDisk(t, dir, 10, LRU, later)
	defer d.Close()
	if n := d.Index().Len(); n != 1 {
		t.Fatalf("reopened with %d entries (%v), want 1", n, d.Index().Keys())
	}
	if v, ok := mustGet(t, d, later, "keep"); !ok || v != "value" {
		t.Fatalf("keep = %q, %v", v, ok)
	}
	for _, k := range []string{"short", "gone"} {
		if _, ok := mustGet(t, d, later, k); ok {
			t.Fatalf("%s survived", k)
		}
	}
	if _, ok := mustGet(t, d, t0.Add(time.Hour), "keep"); ok {
		t.Fatal("keep served after its ttl")
	}
}

// The access order that reads build is batched, and still survives a
// close: reopening with a smaller bound evicts by it.
func TestDiskReopenKeepsPolicyOrder(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 3, LRU, t0)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := d.Put(t0, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	mustGet(t, d, t0, "a") // b is now least recently used
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDisk(t, dir, 2, LRU, t0)
	if got := strings.Join(d.Index().Keys(), ","); got != "c,a" {
		t.Fatalf("keys after shrinking reopen = %s, want c,a", got)
	}
	// Evictions and resizes reach the file too.
	if ev, err := d.Put(t0, "d", []byte("d"), 0); err != nil || len(ev) != 1 || ev[0].Key != "c" {
		t.Fatalf("put d evicted %+v, %v", ev, err)
	}
	if ev, err := d.Resize(1); err != nil || len(ev) != 1 || ev[0].Key != "a" {
		t.Fatalf("resize evicted %+v, %v", ev, err)
	}
	d.Close()
	d = openDisk(t, dir, 10, LRU, t0)
	defer d.Close()
	if got := strings.Join(d.Index().Keys(), ","); got != "d" {
		t.Fatalf("keys on disk = %s, want d", got)
	}
}

func TestDiskPurgeExpired(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 10, FIFO, t0)
	d.Put(t0, "a", []byte("a"), time.Second)
	d.Put(t0, "b", []byte("b"), time.Hour)
	keys, err := d.PurgeExpired(t0.Add(time.Minute))
	if err != nil || strings.Join(keys, ",") != "a" {
		t.Fatalf("purged %v, %v", keys, err)
	}
	if c := d.Index().Counters(); c.Expired != 1 {
		t.Fatalf("counters %+v", c)
	}
	d.Close()
	// Reopened before a's expiry instant would matter: the file lost it.
	d = openDisk(t, dir, 10, FIFO, t0)
	defer d.Close()
	if got := strings.Join(d.Index().Keys(), ","); got != "b" {
		t.Fatalf("keys on disk = %s, want b", got)
	}
}

func TestDiskOpenErrorsNameTheKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file} {
		_, err := OpenDisk(dir, 10, LRU, t0)
		if err == nil || !strings.Contains(err.Error(), "cache.l3_path") {
			t.Errorf("OpenDisk(%q) error = %v, want one naming cache.l3_path", dir, err)
		}
	}
}

func TestDiskSecondOpenFailsInsteadOfHanging(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 10, LRU, t0)
	defer d.Close()
	_, err := OpenDisk(dir, 10, LRU, t0)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "cache.l3_path") || !strings.Contains(err.Error(), "DEER_L3_PATH") {
		t.Fatalf("second open error = %v, want ErrLocked naming cache.l3_path and DEER_L3_PATH", err)
	}
	// A retry does not wait out openTimeout.
	start := time.Now()
	if _, err := openDiskWait(dir, 10, LRU, t0, time.Nanosecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("retry error = %v", err)
	}
	if took := time.Since(start); took >= openTimeout/2 {
		t.Errorf("a retry waited %v for the lock", took)
	}
}
