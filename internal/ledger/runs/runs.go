// Package runs keeps an index from 32-byte hashes to entry indexes as sorted runs in a bbolt
// bucket, for keys that arrive in random order: identity hashes, Merkle leaf hashes, hashed
// search terms.
//
// Putting random keys into a B+tree dirties one page per key once the tree outgrows a batch, so
// the cost of indexing grew with the log (a 4 KiB page rewritten per key at a million entries).
// Instead each batch of entries is written as one run, sorted by (hash, index), and runs of about
// one size merge fanIn at a time into one run fanIn times larger (see Add): a record is
// rewritten about log4(N/batch) times in all, and an index holds up to fanIn-1 runs of each size.
// Runs stop merging at maxMerge records, which bounds the largest merge (20 MiB read and
// written in one transaction, held in memory with bbolt's pages for it until the commit);
// beyond that an index gains a run per maxMerge records, and looking up an absent hash costs
// one Bloom probe per run.
//
// A run covers the entries [start, end) and has, in the bucket:
//
//	'r' kind start -> end (8B BE) | records (8B BE) | chunks (4B BE)
//	'c' kind start chunk (4B BE) -> up to ChunkRecords records, in order
//	'f' kind start -> the first record of each chunk
//	'b' kind start -> a blocked Bloom filter of the run's hashes
//
// where kind (a byte) lets several indexes share a bucket, start is 8 bytes big-endian, and a
// record is a hash (32 bytes) followed by an entry index (8 bytes big-endian). Runs cover
// increasing, disjoint ranges, so the records of one hash, run after run, come in index order.
// Everything is read in place from the caller's transaction: a lookup sees exactly the runs of
// its snapshot.
package runs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"go.etcd.io/bbolt"
)

const (
	// HashSize is the size of the hashes runs index.
	HashSize   = 32
	recordSize = HashSize + 8

	// Bloom filter: bloomBits per record, in 512-bit blocks; a hash sets bloomProbes bits of one
	// block, so a lookup touches one cache line per run.
	bloomBits   = 10
	bloomBlock  = 64
	bloomProbes = 7
)

// Run sizes, variables so that tests can exercise chunk boundaries and the merge limit with
// few records.
var (
	chunkRecords = 1024    // 40 KiB values
	maxMerge     = 1 << 19 // runs are not merged beyond this many records (20 MiB)
)

var (
	// ErrDuplicate reports one hash at two indexes in an index that keeps hashes unique.
	ErrDuplicate = errors.New("a hash indexed at two entries")
	// ErrCorrupt reports stored runs that do not parse.
	ErrCorrupt = errors.New("malformed stored run")
)

// Records are what a run holds: a hash and an entry index each.
type Records []byte

// Append adds a record.
func (rs *Records) Append(hash []byte, index uint64) {
	if len(hash) != HashSize {
		panic(fmt.Sprintf("runs: hash of %d bytes", len(hash)))
	}
	*rs = binary.BigEndian.AppendUint64(append(*rs, hash...), index)
}

// Len is the number of records.
func (rs Records) Len() int { return len(rs) / recordSize }

// Hash is the hash of record i.
func (rs Records) Hash(i int) []byte { return rs[i*recordSize : i*recordSize+HashSize] }

// Index is the entry index of record i.
func (rs Records) Index(i int) uint64 { return binary.BigEndian.Uint64(rs[i*recordSize+HashSize:]) }

func (rs Records) at(i int) []byte { return rs[i*recordSize : (i+1)*recordSize] }

type header struct {
	kind       byte
	start, end int64
	records    int
	chunks     int
}

func runKey(tag, kind byte, start int64) []byte {
	k := make([]byte, 0, 14)
	k = append(k, tag, kind)
	return binary.BigEndian.AppendUint64(k, uint64(start))
}

func chunkKey(kind byte, start int64, chunk int) []byte {
	return binary.BigEndian.AppendUint32(runKey('c', kind, start), uint32(chunk))
}

// headers returns a kind's runs in order of start.
func headers(b *bbolt.Bucket, kind byte) ([]header, error) {
	if b == nil {
		return nil, nil
	}
	var out []header
	c := b.Cursor()
	prefix := []byte{'r', kind}
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 10 || len(v) != 20 {
			return nil, fmt.Errorf("%w: run header %x", ErrCorrupt, k)
		}
		h := header{
			kind:    kind,
			start:   int64(binary.BigEndian.Uint64(k[2:])),
			end:     int64(binary.BigEndian.Uint64(v)),
			records: int(binary.BigEndian.Uint64(v[8:])),
			chunks:  int(binary.BigEndian.Uint32(v[16:])),
		}
		if h.start < 0 || h.end < h.start || h.records < 0 || h.chunks > h.records || (h.records == 0) != (h.chunks == 0) {
			return nil, fmt.Errorf("%w: run header %x: %x", ErrCorrupt, k, v)
		}
		out = append(out, h)
	}
	return out, nil
}

// Run is one run open for lookups inside a transaction.
type Run struct {
	header
	b      *bbolt.Bucket
	bloom  []byte
	fences []byte
}

// Open returns a kind's runs in b, oldest (lowest indexes) first. A nil bucket has none.
func Open(b *bbolt.Bucket, kind byte) ([]Run, error) {
	hs, err := headers(b, kind)
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(hs))
	for _, h := range hs {
		r := Run{header: h, b: b, bloom: b.Get(runKey('b', kind, h.start)), fences: b.Get(runKey('f', kind, h.start))}
		if len(r.fences) != h.chunks*recordSize || len(r.bloom) == 0 || len(r.bloom)%bloomBlock != 0 {
			return nil, fmt.Errorf("%w: run %c %d: %d fence bytes for %d chunks, %d Bloom bytes", ErrCorrupt, kind, h.start, len(r.fences), h.chunks, len(r.bloom))
		}
		out = append(out, r)
	}
	return out, nil
}

// End is the end of the last range indexed under kind, 0 if there is none.
func End(b *bbolt.Bucket, kind byte) (int64, error) {
	hs, err := headers(b, kind)
	if err != nil || len(hs) == 0 {
		return 0, err
	}
	return hs[len(hs)-1].end, nil
}

// bloomSpot picks a hash's block and bit positions from bytes 8..24: the hashes are SHA-256
// outputs, and sorting and fences use their first bytes.
func bloomSpot(h []byte, blocks int) (block int, probes uint64) {
	return int(binary.BigEndian.Uint64(h[8:]) % uint64(blocks)), binary.BigEndian.Uint64(h[16:])
}

func bloomSize(records int) int {
	return max(1, (records*bloomBits+bloomBlock*8-1)/(bloomBlock*8)) * bloomBlock
}

func bloomAdd(f []byte, h []byte) {
	block, p := bloomSpot(h, len(f)/bloomBlock)
	b := f[block*bloomBlock:]
	for range bloomProbes {
		bit := p & 511
		b[bit/8] |= 1 << (bit % 8)
		p >>= 9
	}
}

func bloomHas(f []byte, h []byte) bool {
	block, p := bloomSpot(h, len(f)/bloomBlock)
	b := f[block*bloomBlock:]
	for range bloomProbes {
		bit := p & 511
		if b[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
		p >>= 9
	}
	return true
}

// Find calls fn with the entry index of each record of hash h whose index is at least from, in
// order, until fn returns false; it reports whether fn did.
func (r *Run) Find(h []byte, from uint64, fn func(index uint64) bool) (stopped bool, err error) {
	if len(h) != HashSize || !bloomHas(r.bloom, h) {
		return false, nil
	}
	key := binary.BigEndian.AppendUint64(append(make([]byte, 0, recordSize), h...), from)
	fences := Records(r.fences)
	// The first chunk that can hold key is the one before the first that begins at key or after.
	c := max(0, sort.Search(r.chunks, func(i int) bool { return bytes.Compare(fences.at(i), key) >= 0 })-1)
	for ; c < r.chunks; c++ {
		v := r.b.Get(chunkKey(r.kind, r.start, c))
		if len(v) == 0 || len(v)%recordSize != 0 {
			return false, fmt.Errorf("%w: run %c %d chunk %d of %d bytes", ErrCorrupt, r.kind, r.start, c, len(v))
		}
		recs := Records(v)
		n := recs.Len()
		i := sort.Search(n, func(i int) bool { return bytes.Compare(recs.at(i), key) >= 0 })
		for ; i < n; i++ {
			if !bytes.Equal(recs.Hash(i), h) {
				return false, nil
			}
			if !fn(recs.Index(i)) {
				return true, nil
			}
		}
	}
	return false, nil
}

// sortRecords sorts records and, for an index of unique hashes, refuses a hash twice.
// Records are sorted by their first 8 bytes held beside their position, so that most
// comparisons touch neither record; only equal prefixes compare the records themselves.
func sortRecords(rs Records, unique bool) (Records, error) {
	type key struct {
		prefix uint64
		i      int
	}
	keys := make([]key, rs.Len())
	for i := range keys {
		keys[i] = key{binary.BigEndian.Uint64(rs.at(i)), i}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		return bytes.Compare(rs.at(a.i), rs.at(b.i))
	})
	out := make(Records, 0, len(rs))
	for _, k := range keys {
		out = append(out, rs.at(k.i)...)
	}
	return out, checkUnique(out, unique)
}

func checkUnique(rs Records, unique bool) error {
	if !unique {
		return nil
	}
	for i := 1; i < rs.Len(); i++ {
		if bytes.Equal(rs.Hash(i-1), rs.Hash(i)) {
			return fmt.Errorf("%w: %x at entries %d and %d", ErrDuplicate, rs.Hash(i), rs.Index(i-1), rs.Index(i))
		}
	}
	return nil
}

// merge merges sorted runs, each given as its chunks in order, into one.
func merge(parts [][]Records, unique bool) (Records, error) {
	n := 0
	for _, p := range parts {
		for _, c := range p {
			n += len(c)
		}
	}
	out := make(Records, 0, n)
	heads := make([]Records, len(parts)) // each part's next records, in its current chunk
	rest := slices.Clone(parts)          // each part's chunks after its current one
	next := func(i int) {
		for len(heads[i]) == 0 && len(rest[i]) > 0 {
			heads[i], rest[i] = rest[i][0], rest[i][1:]
		}
	}
	for i := range parts {
		next(i)
	}
	for {
		lo := -1
		for i, h := range heads {
			if len(h) > 0 && (lo < 0 || bytes.Compare(h[:recordSize], heads[lo][:recordSize]) < 0) {
				lo = i
			}
		}
		if lo < 0 {
			break
		}
		out = append(out, heads[lo][:recordSize]...)
		heads[lo] = heads[lo][recordSize:]
		next(lo)
	}
	return out, checkUnique(out, unique)
}

// read returns a run's chunks as the transaction holds them, without copying: they stay valid
// until the transaction commits or rolls back, even once deleted (bbolt frees their pages for
// later transactions only), and MUST NOT be modified.
func read(b *bbolt.Bucket, h header) ([]Records, error) {
	out := make([]Records, 0, h.chunks)
	n := 0
	for c := range h.chunks {
		v := b.Get(chunkKey(h.kind, h.start, c))
		if len(v) == 0 || len(v)%recordSize != 0 {
			return nil, fmt.Errorf("%w: run %c %d chunk %d of %d bytes", ErrCorrupt, h.kind, h.start, c, len(v))
		}
		out = append(out, Records(v))
		n += len(v) / recordSize
	}
	if n != h.records {
		return nil, fmt.Errorf("%w: run %c %d holds %d records, its header says %d", ErrCorrupt, h.kind, h.start, n, h.records)
	}
	return out, nil
}

func remove(b *bbolt.Bucket, h header) error {
	for _, k := range [][]byte{runKey('r', h.kind, h.start), runKey('b', h.kind, h.start), runKey('f', h.kind, h.start)} {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for c := range h.chunks {
		if err := b.Delete(chunkKey(h.kind, h.start, c)); err != nil {
			return err
		}
	}
	return nil
}

func write(b *bbolt.Bucket, kind byte, start, end int64, rs Records) error {
	n := rs.Len()
	chunks := (n + chunkRecords - 1) / chunkRecords
	fences := make([]byte, 0, chunks*recordSize)
	bloom := make([]byte, bloomSize(n))
	for c := range chunks {
		v := rs[c*chunkRecords*recordSize : min(n, (c+1)*chunkRecords)*recordSize]
		fences = append(fences, v[:recordSize]...)
		if err := b.Put(chunkKey(kind, start, c), v); err != nil {
			return err
		}
	}
	for i := range n {
		bloomAdd(bloom, rs.Hash(i))
	}
	hdr := binary.BigEndian.AppendUint64(nil, uint64(end))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(chunks))
	if err := b.Put(runKey('f', kind, start), fences); err != nil {
		return err
	}
	if err := b.Put(runKey('b', kind, start), bloom); err != nil {
		return err
	}
	return b.Put(runKey('r', kind, start), hdr)
}

// fanIn is how many runs of about one size merge into one.
const fanIn = 4

// Add writes the records of the entries [start, end) as a new run of kind. The newest runs at
// most twice as large as what is being written are of its size or below; once they are fanIn-1
// or more, they merge with it into one run, and so on up (so a record is rewritten about once
// per fourfold growth of the index). A merge takes in no more runs than fit in maxMerge records;
// when that stops it short of fanIn runs, it merges the runs that fit, if any, so runs near the
// limit still grow toward it. start MUST be at least End(b, kind). With unique, a hash already
// in one of the runs merged, or twice in rs, fails with ErrDuplicate; the caller checks the runs
// not merged (see Run.Find).
func Add(b *bbolt.Bucket, kind byte, start, end int64, rs Records, unique bool) error {
	if done, err := End(b, kind); err != nil {
		return err
	} else if start < done || end < start {
		return fmt.Errorf("runs: adding [%d, %d) after [.., %d)", start, end, done)
	}
	rs, err := sortRecords(rs, unique)
	if err != nil {
		return err
	}
	hs, err := headers(b, kind)
	if err != nil {
		return err
	}
	for {
		n, total, capped := 0, rs.Len(), false
		for ; n < len(hs); n++ {
			h := hs[len(hs)-1-n]
			if h.records > 2*rs.Len() {
				break
			}
			if total+h.records > maxMerge {
				capped = true
				break
			}
			total += h.records
		}
		if n == 0 || (n+1 < fanIn && !capped) {
			break
		}
		older := hs[len(hs)-n:]
		parts := make([][]Records, 0, n+1)
		for _, h := range older {
			old, err := read(b, h)
			if err != nil {
				return err
			}
			parts = append(parts, old)
		}
		if rs, err = merge(append(parts, []Records{rs}), unique); err != nil {
			return err
		}
		for _, h := range older {
			if err := remove(b, h); err != nil {
				return err
			}
		}
		start, hs = older[0].start, hs[:len(hs)-n]
	}
	return write(b, kind, start, end, rs)
}
