package ledger

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// KindCosign adds signatures to a threshold link that is still short of them (see Contribution).
const KindCosign Kind = 3

// Buckets of the threshold co-signing state.
var (
	bucketPending  = []byte("ledger/pending")          // group id -> PendingLink (JSON)
	bucketExpiry   = []byte("ledger/pending-expiry")   // expiry (8 bytes) || group id -> nil
	bucketComplete = []byte("ledger/pending-complete") // group id -> index of the appended entry
)

// Errors of threshold co-signing.
var (
	// ErrNoMerger means the ledger was configured without a way to merge signatures.
	ErrNoMerger = errors.New("ledger cannot merge signatures")
	// ErrPendingMismatch means a contribution names a group whose stored layout, step, payload or
	// threshold differ from its own.
	ErrPendingMismatch = errors.New("contribution does not match its pending group")
)

// Contribution is one submission of a threshold link: an envelope over a payload, signed by one
// or more functionaries of the step, that the admitting node has already verified. Contributions
// with the same layout, step and payload digest form one group; when the group's distinct
// signers reach the threshold the merged envelope is appended as an entry.
//
// Everything that depends on a clock or on signature checks was decided by the admitting node and
// is carried here, so that applying a contribution is deterministic.
type Contribution struct {
	Layout     string   `json:"layout"`      // sha256:<hex> of the layout entry
	Step       string   `json:"step"`        // the step's name
	Payload    string   `json:"payload"`     // sha256:<hex> of the signed bytes
	Threshold  int      `json:"threshold"`   // the step's threshold
	Envelope   []byte   `json:"envelope"`    // as sent, all its signatures verified and authorized
	Signers    []string `json:"signers"`     // distinct functionary ids that signed it
	PublicKeys []string `json:"public_keys"` // keys sent with it, carried into the leaf
	Terms      []string `json:"terms"`       // search terms for the appended entry
	Expires    int64    `json:"expires"`     // unix nanoseconds; a group expires at its first contribution's
}

// GroupID identifies the group a contribution joins.
func (c *Contribution) GroupID() string {
	h := sha256.New()
	for _, s := range []string{c.Layout, c.Step, c.Payload} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// MarshalBinary encodes a contribution for a KindCosign command.
func (c *Contribution) MarshalBinary() ([]byte, error) { return json.Marshal(c) }

// UnmarshalBinary decodes and checks a contribution.
func (c *Contribution) UnmarshalBinary(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%w: contribution: %v", ErrMalformedRecord, err)
	}
	switch {
	case c.Layout == "" || c.Step == "" || c.Payload == "":
		return fmt.Errorf("%w: contribution without layout, step or payload", ErrMalformedRecord)
	case c.Threshold < 1 || len(c.Signers) == 0 || len(c.Envelope) == 0:
		return fmt.Errorf("%w: contribution without threshold, signers or envelope", ErrMalformedRecord)
	}
	for _, t := range c.Terms {
		if !validTerm(t) {
			return fmt.Errorf("%w: term %q", ErrMalformedRecord, t)
		}
	}
	return nil
}

// PendingLink is the state of one co-signing group.
type PendingLink struct {
	ID         string   `json:"id"`
	Layout     string   `json:"layout"`
	Step       string   `json:"step"`
	Payload    string   `json:"payload"`
	Threshold  int      `json:"threshold"`
	Signers    []string `json:"signers"` // sorted, distinct
	Envelope   []byte   `json:"envelope"`
	PublicKeys []string `json:"public_keys"`
	Terms      []string `json:"terms"`
	Created    int64    `json:"created"` // unix nanoseconds, the stamp of the first contribution
	Expires    int64    `json:"expires"`
}

// CosignResult is the outcome of a contribution: still pending, or appended at Index.
type CosignResult struct {
	Group      string
	Signatures int
	Threshold  int
	Appended   bool // the group reached its threshold; Result.Index is the entry
}

// Merger merges the signatures of two envelopes over the same payload into one envelope. It MUST
// be a pure function: every replica merges the same bytes into the same bytes.
type Merger func(a, b []byte) ([]byte, error)

// applyCosign applies one KindCosign command: expire groups past the command's stamp, then add
// each contribution to its group, appending the merged envelope when the group is complete.
func (st *store) applyCosign(tx *bbolt.Tx, next uint64, c Command, merge Merger) ([]Result, uint64, error) {
	if err := expirePending(tx, c.Stamp); err != nil {
		return nil, 0, err
	}
	res := make([]Result, len(c.Records))
	for i, raw := range c.Records {
		var con Contribution
		if err := con.UnmarshalBinary(raw); err != nil {
			res[i].Err = err
			continue
		}
		r, n, err := st.contribute(tx, next, c.Stamp, &con, merge)
		if err != nil {
			return nil, 0, err
		}
		res[i], next = r, n
	}
	return res, next, nil
}

// contribute adds one contribution. Deterministic rejections go into the Result; a storage
// failure is returned.
func (st *store) contribute(tx *bbolt.Tx, next uint64, stamp time.Time, con *Contribution, merge Merger) (Result, uint64, error) {
	id := con.GroupID()
	if v := tx.Bucket(bucketComplete).Get([]byte(id)); v != nil {
		return Result{Index: getU64(v), Duplicate: true, Cosign: &CosignResult{Group: id, Appended: true}}, next, nil
	}
	p, err := getPending(tx, id)
	if err != nil {
		return Result{}, 0, err
	}
	if p == nil {
		p = &PendingLink{ID: id, Layout: con.Layout, Step: con.Step, Payload: con.Payload, Threshold: con.Threshold,
			Envelope: con.Envelope, PublicKeys: con.PublicKeys, Terms: con.Terms, Created: stamp.UnixNano(), Expires: con.Expires}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(p.Expires, id), nil); err != nil {
			return Result{}, 0, err
		}
	} else {
		if p.Threshold != con.Threshold {
			return Result{Err: fmt.Errorf("%w: threshold %d, group has %d", ErrPendingMismatch, con.Threshold, p.Threshold)}, next, nil
		}
		if merge == nil {
			return Result{Err: ErrNoMerger}, next, nil
		}
		merged, err := merge(p.Envelope, con.Envelope)
		if err != nil {
			return Result{Err: fmt.Errorf("%w: merge signatures: %v", ErrPendingMismatch, err)}, next, nil
		}
		p.Envelope = merged
		p.PublicKeys = union(p.PublicKeys, con.PublicKeys)
		p.Terms = union(p.Terms, con.Terms)
	}
	p.Signers = union(p.Signers, con.Signers)
	cr := &CosignResult{Group: id, Signatures: len(p.Signers), Threshold: p.Threshold}
	if len(p.Signers) < p.Threshold {
		return Result{Cosign: cr}, next, putPending(tx, p)
	}
	return st.completePending(tx, next, stamp, p, cr)
}

// completePending appends a group's merged envelope and retires the group.
func (st *store) completePending(tx *bbolt.Tx, next uint64, stamp time.Time, p *PendingLink, cr *CosignResult) (Result, uint64, error) {
	leaf, blob, err := appliedLeaf(p.Envelope, p.Layout, p.PublicKeys)
	if err != nil {
		return Result{Err: fmt.Errorf("%w: %v", ErrMalformedRecord, err)}, next, nil
	}
	rec := Record{Identity: IdentityOf(p.Envelope), Leaf: leaf, Blob: blob, Terms: append(slices.Clone(p.Terms), Term(TermPending, p.ID))}
	raw, err := rec.MarshalBinary()
	if err != nil {
		return Result{Err: err}, next, nil
	}
	res, n, err := st.applyEntries(tx, next, Command{Kind: KindEntries, Stamp: stamp, Records: [][]byte{raw}})
	if err != nil {
		return Result{}, 0, err
	}
	r := res[0]
	if r.Err != nil {
		return r, next, nil
	}
	cr.Appended = true
	r.Cosign = cr
	if err := tx.Bucket(bucketComplete).Put([]byte(p.ID), u64(r.Index)); err != nil {
		return Result{}, 0, err
	}
	if err := deletePending(tx, p); err != nil {
		return Result{}, 0, err
	}
	return r, n, nil
}

// expirePending drops groups whose expiry is at or before now (the proposer's stamp).
func expirePending(tx *bbolt.Tx, now time.Time) error {
	if now.IsZero() {
		return nil
	}
	exp := tx.Bucket(bucketExpiry)
	var dead [][]byte
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && len(k) > 8 && int64(binary.BigEndian.Uint64(k)) <= now.UnixNano(); k, _ = c.Next() {
		dead = append(dead, bytes.Clone(k))
	}
	for _, k := range dead {
		if err := exp.Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPending).Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}

func expiryKey(expires int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(max(expires, 0))), id...)
}

func getPending(tx *bbolt.Tx, id string) (*PendingLink, error) {
	v := tx.Bucket(bucketPending).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var p PendingLink
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("stored pending link %s: %w", id, err)
	}
	return &p, nil
}

func putPending(tx *bbolt.Tx, p *PendingLink) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketPending).Put([]byte(p.ID), b)
}

func deletePending(tx *bbolt.Tx, p *PendingLink) error {
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(p.Expires, p.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketPending).Delete([]byte(p.ID))
}

// union returns the sorted distinct elements of a and b.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Pending returns the co-signing groups still open at now, oldest first; with layout set, only
// that layout's.
func (l *Ledger) Pending(layout string, now time.Time) ([]*PendingLink, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []*PendingLink
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
			var p PendingLink
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			if p.Expires > now.UnixNano() && (layout == "" || p.Layout == layout) {
				out = append(out, &p)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *PendingLink) int {
		if c := cmp.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, err
}

// PendingGroup returns one group, or the index its entry was appended at.
func (l *Ledger) PendingGroup(id string) (p *PendingLink, appended uint64, done bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	err = l.st.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketComplete).Get([]byte(id)); v != nil {
			appended, done = getU64(v), true
			return nil
		}
		var err error
		p, err = getPending(tx, id)
		return err
	})
	if err == nil && p == nil && !done {
		err = fmt.Errorf("%w: pending link %s", ErrNotFound, id)
	}
	return p, appended, done, err
}
