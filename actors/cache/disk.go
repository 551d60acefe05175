package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// DBFile is the name of the L3 store's file inside cache.l3_path.
const DBFile = "l3.db"

var (
	bucketMeta = []byte("meta") // key → encoded expiry and eviction metadata
	bucketData = []byte("data") // key → value
)

// flushAfter bounds how many read-side changes (access metadata, expiries
// found on read) wait in memory before they are written in one transaction.
const flushAfter = 512

// openTimeout bounds the wait for the file lock, so that a second process
// on the same cache.l3_path fails to open instead of hanging the actor.
const openTimeout = time.Second

// ErrLocked is wrapped by OpenDisk's error when another process (a second
// deerd on the same cache.l3_path) holds the store's file lock.
var ErrLocked = errors.New("locked by another process")

// DiskStore is the persistent L3 tier: values live in a bbolt file, and the
// index of keys with their expiry and eviction metadata lives in a Store,
// so that the size bound and the policy work exactly as in memory. Puts,
// deletes, evictions and purges are written synchronously, one transaction
// each; what reads change (access order, LFU counts, entries found expired)
// is batched and written with the next write, every flushAfter reads, on
// Flush and on Close, so reads never wait for an fsync. Losing that batch
// in a crash costs only eviction-order accuracy: an entry found expired is
// expired again when the index is reloaded.
//
// Not safe for concurrent use; the L3 actor is its only user.
type DiskStore struct {
	dir     string
	db      *bbolt.DB
	index   *Store
	pending map[string]pendingOp
}

type pendingOp struct {
	del  bool  // remove the key
	meta Entry // else: rewrite its metadata
}

// OpenDisk opens (creating it if needed) the store in dir, which is
// cache.l3_path, loads its index, drops what expired by now and evicts what
// no longer fits capacity. Errors name cache.l3_path; a store another
// process holds is ErrLocked after openTimeout.
func OpenDisk(dir string, capacity int, p Policy, now time.Time) (*DiskStore, error) {
	return openDiskWait(dir, capacity, p, now, openTimeout)
}

// openDiskWait is OpenDisk waiting at most lockWait (> 0) for the file lock.
func openDiskWait(dir string, capacity int, p Policy, now time.Time, lockWait time.Duration) (*DiskStore, error) {
	if dir == "" {
		return nil, errors.New("cache.l3_path is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache.l3_path %q: %w", dir, err)
	}
	file := filepath.Join(dir, DBFile)
	db, err := bbolt.Open(file, 0o600, &bbolt.Options{Timeout: lockWait})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("cache.l3_path %q: %s is %w (another deerd?); give each process its own cache.l3_path (DEER_L3_PATH)",
				dir, file, ErrLocked)
		}
		return nil, fmt.Errorf("cache.l3_path %q: %w", dir, err)
	}
	d := &DiskStore{dir: dir, db: db, index: NewStore(capacity, p), pending: map[string]pendingOp{}}
	if err := d.load(now); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache.l3_path %q: loading %s: %w", dir, DBFile, err)
	}
	return d, nil
}

// load builds the index in one write transaction that also removes expired
// entries, orphaned halves of records, and the overflow beyond capacity.
func (d *DiskStore) load(now time.Time) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		data, err := tx.CreateBucketIfNotExists(bucketData)
		if err != nil {
			return err
		}
		var live []Entry
		var drop [][]byte
		err = meta.ForEach(func(k, v []byte) error {
			e, ok := decodeMeta(v)
			if !ok || data.Get(k) == nil || e.Expired(now) {
				drop = append(drop, bytes.Clone(k))
				return nil
			}
			e.Key = string(k)
			live = append(live, e)
			return nil
		})
		if err != nil {
			return err
		}
		err = data.ForEach(func(k, _ []byte) error {
			if meta.Get(k) == nil {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range d.index.Restore(live) {
			drop = append(drop, []byte(e.Key))
		}
		for _, k := range drop {
			if err := meta.Delete(k); err != nil {
				return err
			}
			if err := data.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Dir is the directory the store was opened in.
func (d *DiskStore) Dir() string { return d.dir }

// Index is the in-memory index: Len, Cap, Policy and Counters read from it.
// Do not modify it directly.
func (d *DiskStore) Index() *Store { return d.index }

// Get returns the live entry for key, its value read from disk.
func (d *DiskStore) Get(now time.Time, key string) (Entry, bool, error) {
	e, o := d.index.Lookup(now, key)
	switch o {
	case Miss:
		return Entry{}, false, nil
	case Expired:
		d.pending[key] = pendingOp{del: true}
		return Entry{}, false, d.maybeFlush()
	}
	err := d.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketData).Get([]byte(key)); v != nil {
			e.Value = bytes.Clone(v) // bbolt's slice is valid only inside the transaction
		}
		return nil
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("l3 read %q: %w", key, err)
	}
	if e.Value == nil { // index and file disagree: trust the file
		d.index.Delete(key)
		d.pending[key] = pendingOp{del: true}
		return Entry{}, false, d.maybeFlush()
	}
	meta := e
	meta.Value = nil // only the metadata waits for the flush
	d.pending[key] = pendingOp{meta: meta}
	return e, true, d.maybeFlush()
}

// Put stores value for ttl (ttl <= 0: no expiry); see PutUntil.
func (d *DiskStore) Put(now time.Time, key string, value []byte, ttl time.Duration) ([]Entry, error) {
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	return d.PutUntil(key, value, exp)
}

// PutUntil stores value until expiresAt (zero: no expiry) in one
// synchronous transaction, with the evictions it causes, and returns the
// evicted entries (keys and metadata; their values are gone). If the write
// fails the key is dropped from the index, so the store never claims what
// the file does not hold.
func (d *DiskStore) PutUntil(key string, value []byte, expiresAt time.Time) ([]Entry, error) {
	evicted := d.index.PutUntil(key, value, expiresAt)
	for _, e := range evicted {
		d.pending[e.Key] = pendingOp{del: true}
	}
	stored, ok := d.index.items[key]
	if !ok { // capacity 0: evicted at once
		return evicted, d.flush()
	}
	e := stored.Entry
	stored.Value = nil // the index holds no values
	delete(d.pending, key)
	err := d.db.Update(func(tx *bbolt.Tx) error {
		if err := d.applyPending(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketData).Put([]byte(key), value); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte(key), encodeMeta(e))
	})
	if err != nil {
		d.index.Delete(key)
		d.pending[key] = pendingOp{del: true}
		return evicted, fmt.Errorf("l3 write %q: %w", key, err)
	}
	clear(d.pending)
	return evicted, nil
}

// Delete removes key from the index and the file.
func (d *DiskStore) Delete(key string) (bool, error) {
	if !d.index.Delete(key) {
		return false, nil
	}
	d.pending[key] = pendingOp{del: true}
	return true, d.flush()
}

// Resize changes the bound and deletes the evicted overflow from the file.
func (d *DiskStore) Resize(capacity int) ([]Entry, error) {
	evicted := d.index.Resize(capacity)
	if len(evicted) == 0 {
		return nil, nil
	}
	for _, e := range evicted {
		d.pending[e.Key] = pendingOp{del: true}
	}
	return evicted, d.flush()
}

// SetPolicy reorders the index; the file keeps the metadata every policy
// needs, so nothing is written.
func (d *DiskStore) SetPolicy(p Policy) { d.index.SetPolicy(p) }

// PurgeExpired removes what expired by now from the index and the file.
func (d *DiskStore) PurgeExpired(now time.Time) ([]string, error) {
	keys := d.index.PurgeExpired(now)
	for _, k := range keys {
		d.pending[k] = pendingOp{del: true}
	}
	return keys, d.flush()
}

// Flush writes the batched read-side changes.
func (d *DiskStore) Flush() error { return d.flush() }

// Close flushes and closes the file. The store is unusable afterwards.
func (d *DiskStore) Close() error {
	return errors.Join(d.flush(), d.db.Close())
}

func (d *DiskStore) maybeFlush() error {
	if len(d.pending) < flushAfter {
		return nil
	}
	return d.flush()
}

func (d *DiskStore) flush() error {
	if len(d.pending) == 0 {
		return nil
	}
	if err := d.db.Update(d.applyPending); err != nil {
		return fmt.Errorf("l3 write: %w", err) // pending stays for the next try
	}
	clear(d.pending)
	return nil
}

func (d *DiskStore) applyPending(tx *bbolt.Tx) error {
	meta, data := tx.Bucket(bucketMeta), tx.Bucket(bucketData)
	for k, op := range d.pending {
		key := []byte(k)
		if op.del {
			if err := meta.Delete(key); err != nil {
				return err
			}
			if err := data.Delete(key); err != nil {
				return err
			}
			continue
		}
		if meta.Get(key) == nil {
			continue // removed since: do not resurrect half a record
		}
		if err := meta.Put(key, encodeMeta(op.meta)); err != nil {
			return err
		}
	}
	return nil
}

// Metadata record: version, expiry (unix ns, 0 = none), inserted, accessed, hits.
const (
	metaVersion = 1
	metaLen     = 1 + 4*8
)

func encodeMeta(e Entry) []byte {
	b := make([]byte, metaLen)
	b[0] = metaVersion
	var exp int64
	if !e.ExpiresAt.IsZero() {
		exp = e.ExpiresAt.UnixNano()
	}
	binary.BigEndian.PutUint64(b[1:], uint64(exp))
	binary.BigEndian.PutUint64(b[9:], e.Inserted)
	binary.BigEndian.PutUint64(b[17:], e.Accessed)
	binary.BigEndian.PutUint64(b[25:], e.Hits)
	return b
}

func decodeMeta(b []byte) (Entry, bool) {
	if len(b) != metaLen || b[0] != metaVersion {
		return Entry{}, false
	}
	var e Entry
	if exp := int64(binary.BigEndian.Uint64(b[1:])); exp != 0 {
		e.ExpiresAt = time.Unix(0, exp)
	}
	e.Inserted = binary.BigEndian.Uint64(b[9:])
	e.Accessed = binary.BigEndian.Uint64(b[17:])
	e.Hits = binary.BigEndian.Uint64(b[25:])
	return e, true
}
