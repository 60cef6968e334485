package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sorted runs hold the identity and Merkle hash index entries IndexLeavesTx writes. Putting
// random 32-byte keys into a B+tree dirties one page per key once the tree outgrows the batch,
// so indexing cost grew with the log (a 4 KiB page rewritten per entry and per index at a
// million entries). Instead each call writes its leaves' entries as one run, sorted by hash,
// and merges it with the newest run while that is no larger, as a binary counter carries: a run
// is rewritten about log2(N/batch) times in all, and a tree holds about as many runs. Runs stop
// merging at maxRunMerge records, which bounds the largest merge (about 80 MiB read and written
// for both indexes, in one transaction, once per million leaves); beyond that a tree gains a run
// per million leaves, and looking up an absent hash costs one Bloom probe per run.
//
// A run covers the leaves [start, end) and has, under the tree's runs bucket:
//
//	'r' kind start -> end (8B BE) | records (8B BE) | chunks (4B BE)
//	'c' kind start chunk (4B BE) -> up to chunkRecords records, in order
//	'f' kind start -> the first hash of each chunk
//	'b' kind start -> a blocked Bloom filter of the run's hashes
//
// where kind is runIdent or runHash, start is 8 bytes big-endian, and a record is a hash (32
// bytes) followed by a leaf index (8 bytes big-endian). Everything is read in place from the
// caller's transaction, so a lookup sees exactly the runs of its snapshot.
const (
	runIdent   = 'i' // LeafIdentityHash -> index
	runHash    = 'h' // MerkleLeafHash -> index
	recordSize = hashSize + 8

	// Bloom filter: bloomBits per record, in 512-bit blocks; a hash sets bloomProbes bits of one
	// block, so a lookup touches one cache line per run.
	bloomBits   = 10
	bloomBlock  = 64
	bloomProbes = 7
)

// Run sizes, variables so that tests can exercise merges and chunk boundaries with few leaves.
var (
	chunkRecords = 1024    // 40 KiB values
	maxRunMerge  = 1 << 20 // runs are not merged beyond this many records (40 MiB)
)

type runHeader struct {
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

// runHeaders returns a kind's runs in order of start.
func runHeaders(b *bbolt.Bucket, kind byte) ([]runHeader, error) {
	if b == nil {
		return nil, nil
	}
	var out []runHeader
	c := b.Cursor()
	prefix := []byte{'r', kind}
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 10 || len(v) != 20 {
			return nil, fmt.Errorf("%w: run header %x", errBadKey, k)
		}
		h := runHeader{
			kind:    kind,
			start:   int64(binary.BigEndian.Uint64(k[2:])),
			end:     int64(binary.BigEndian.Uint64(v)),
			records: int(binary.BigEndian.Uint64(v[8:])),
			chunks:  int(binary.BigEndian.Uint32(v[16:])),
		}
		if h.start < 0 || h.end < h.start || h.records < 0 || h.chunks > h.records || (h.records == 0) != (h.chunks == 0) {
			return nil, fmt.Errorf("%w: run header %x: %x", errBadKey, k, v)
		}
		out = append(out, h)
	}
	return out, nil
}

// sortedRun is one run open for lookups inside a transaction.
type sortedRun struct {
	runHeader
	b      *bbolt.Bucket
	bloom  []byte
	fences []byte
}

// openRuns returns a kind's runs, newest first, read from b's transaction.
func openRuns(b *bbolt.Bucket, kind byte) ([]sortedRun, error) {
	hs, err := runHeaders(b, kind)
	if err != nil {
		return nil, err
	}
	out := make([]sortedRun, 0, len(hs))
	for i := len(hs) - 1; i >= 0; i-- {
		h := hs[i]
		r := sortedRun{runHeader: h, b: b, bloom: b.Get(runKey('b', kind, h.start)), fences: b.Get(runKey('f', kind, h.start))}
		if len(r.fences) != h.chunks*hashSize || len(r.bloom) == 0 || len(r.bloom)%bloomBlock != 0 {
			return nil, fmt.Errorf("%w: run %c %d: %d fence bytes for %d chunks, %d Bloom bytes", errBadKey, kind, h.start, len(r.fences), h.chunks, len(r.bloom))
		}
		out = append(out, r)
	}
	return out, nil
}

// bloomSpot picks a hash's block and bit positions from bytes 8..24, which fences and sorting
// do not depend on; the hashes are SHA-256 outputs.
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

// find calls fn with the leaf index of each record whose hash is h, in order of index.
func (r *sortedRun) find(h []byte, fn func(index int64)) error {
	if !bloomHas(r.bloom, h) {
		return nil
	}
	fence := func(i int) []byte { return r.fences[i*hashSize : (i+1)*hashSize] }
	// The first chunk that can hold h: records equal to h may begin in the chunk before the
	// first whose first hash is h.
	c := max(0, sort.Search(r.chunks, func(i int) bool { return bytes.Compare(fence(i), h) >= 0 })-1)
	for ; c < r.chunks; c++ {
		recs := r.b.Get(chunkKey(r.kind, r.start, c))
		if len(recs) == 0 || len(recs)%recordSize != 0 {
			return fmt.Errorf("%w: run %c %d chunk %d of %d bytes", errBadKey, r.kind, r.start, c, len(recs))
		}
		n := len(recs) / recordSize
		i := sort.Search(n, func(i int) bool { return bytes.Compare(recs[i*recordSize:i*recordSize+hashSize], h) >= 0 })
		for ; i < n; i++ {
			rec := recs[i*recordSize : (i+1)*recordSize]
			if !bytes.Equal(rec[:hashSize], h) {
				return nil
			}
			fn(int64(binary.BigEndian.Uint64(rec[hashSize:])))
		}
	}
	return nil
}

// findInRuns returns the indexes of the leaves whose kind hash is h, in all of b's runs.
func findInRuns(b *bbolt.Bucket, kind byte, h []byte) ([]int64, error) {
	runs, err := openRuns(b, kind)
	if err != nil {
		return nil, err
	}
	var out []int64
	for i := range runs {
		if err := runs[i].find(h, func(idx int64) { out = append(out, idx) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// records is a run's contents: records of recordSize bytes, sorted.
type records []byte

func (rs records) len() int          { return len(rs) / recordSize }
func (rs records) at(i int) []byte   { return rs[i*recordSize : (i+1)*recordSize] }
func (rs records) hash(i int) []byte { return rs[i*recordSize : i*recordSize+hashSize] }

// sortRecords sorts records and, for the identity index, refuses two leaves with one identity.
func sortRecords(kind byte, rs records) (records, error) {
	idx := make([]int, rs.len())
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(rs.at(a), rs.at(b)) })
	out := make(records, 0, len(rs))
	for _, i := range idx {
		out = append(out, rs.at(i)...)
	}
	return out, checkUnique(kind, out)
}

func checkUnique(kind byte, rs records) error {
	if kind != runIdent {
		return nil
	}
	for i := 1; i < rs.len(); i++ {
		if bytes.Equal(rs.hash(i-1), rs.hash(i)) {
			return status.Errorf(codes.FailedPrecondition, "leaf identity %x is indexed at leaves %d and %d",
				rs.hash(i), binary.BigEndian.Uint64(rs.at(i - 1)[hashSize:]), binary.BigEndian.Uint64(rs.at(i)[hashSize:]))
		}
	}
	return nil
}

// mergeRecords merges two sorted runs.
func mergeRecords(kind byte, a, b records) (records, error) {
	out := make(records, 0, len(a)+len(b))
	i, j := 0, 0
	for i < a.len() && j < b.len() {
		if bytes.Compare(a.at(i), b.at(j)) <= 0 {
			out = append(out, a.at(i)...)
			i++
		} else {
			out = append(out, b.at(j)...)
			j++
		}
	}
	out = append(out, a[i*recordSize:]...)
	out = append(out, b[j*recordSize:]...)
	return out, checkUnique(kind, out)
}

// readRun copies a run's records out of the transaction.
func readRun(b *bbolt.Bucket, h runHeader) (records, error) {
	out := make(records, 0, h.records*recordSize)
	for c := range h.chunks {
		v := b.Get(chunkKey(h.kind, h.start, c))
		if len(v) == 0 || len(v)%recordSize != 0 {
			return nil, fmt.Errorf("%w: run %c %d chunk %d of %d bytes", errBadKey, h.kind, h.start, c, len(v))
		}
		out = append(out, v...)
	}
	if out.len() != h.records {
		return nil, fmt.Errorf("%w: run %c %d holds %d records, its header says %d", errBadKey, h.kind, h.start, out.len(), h.records)
	}
	return out, nil
}

func deleteRun(b *bbolt.Bucket, h runHeader) error {
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

func writeRun(b *bbolt.Bucket, kind byte, start, end int64, rs records) error {
	n := rs.len()
	chunks := (n + chunkRecords - 1) / chunkRecords
	fences := make([]byte, 0, chunks*hashSize)
	bloom := make([]byte, bloomSize(n))
	for c := range chunks {
		v := rs[c*chunkRecords*recordSize : min(n, (c+1)*chunkRecords)*recordSize]
		fences = append(fences, v[:hashSize]...)
		if err := b.Put(chunkKey(kind, start, c), v); err != nil {
			return err
		}
	}
	for i := range n {
		bloomAdd(bloom, rs.hash(i))
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

// addRun writes the records of the leaves [start, end) as a new run, merged first with the
// newest runs while each is no larger than what is being written (and the result stays within
// maxRunMerge records).
func addRun(b *bbolt.Bucket, kind byte, start, end int64, rs records) error {
	rs, err := sortRecords(kind, rs)
	if err != nil {
		return err
	}
	hs, err := runHeaders(b, kind)
	if err != nil {
		return err
	}
	for len(hs) > 0 {
		last := hs[len(hs)-1]
		if last.records > rs.len() || last.records+rs.len() > maxRunMerge {
			break
		}
		old, err := readRun(b, last)
		if err != nil {
			return err
		}
		if rs, err = mergeRecords(kind, old, rs); err != nil {
			return err
		}
		if err := deleteRun(b, last); err != nil {
			return err
		}
		start, hs = last.start, hs[:len(hs)-1]
	}
	return writeRun(b, kind, start, end, rs)
}

// indexedEnd is the end of the last range of leaves indexed in runs.
func indexedEnd(b *bbolt.Bucket) (int64, error) {
	hs, err := runHeaders(b, runHash)
	if err != nil || len(hs) == 0 {
		return 0, err
	}
	return hs[len(hs)-1].end, nil
}
