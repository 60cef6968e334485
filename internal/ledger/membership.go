package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/verify"
)

// KindMembership replaces the network's membership document with its next version. The record is
// the signed note; it takes effect only if verify.Membership.VerifyNext accepts it against the
// current version (signed by a quorum of the current members, version exactly one more).
const KindMembership Kind = 4

// bucketMembership holds every accepted membership version: version (8 bytes) -> signed note.
// Version 1 is the genesis text every member is configured with; it is stored unsigned.
var bucketMembership = []byte("ledger/membership")

// ErrGenesisMismatch means the state was created with a different genesis membership than the
// one configured now.
var ErrGenesisMismatch = errors.New("configured genesis membership differs from the one the state was created with")

// initMembership stores the genesis membership on first use and checks it on every later open.
func (st *store) initMembership(genesis []byte) error {
	if genesis == nil {
		return nil
	}
	if _, err := verify.ParseMembershipText(genesis); err != nil {
		return fmt.Errorf("genesis membership: %w", err)
	}
	return st.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMembership)
		stored := b.Get(u64(1))
		if stored == nil {
			return b.Put(u64(1), genesis)
		}
		if !bytes.Equal(stored, genesis) {
			return ErrGenesisMismatch
		}
		return nil
	})
}

// currentMembership returns the newest accepted version and its signed bytes.
func currentMembership(tx *bbolt.Tx) (*verify.Membership, []byte, error) {
	k, v := tx.Bucket(bucketMembership).Cursor().Last()
	if k == nil {
		return nil, nil, nil
	}
	text := v
	if binary.BigEndian.Uint64(k) > 1 {
		t, _, ok := bytes.Cut(v, []byte("\n\n"))
		if !ok {
			return nil, nil, fmt.Errorf("stored membership %d is not a signed note", binary.BigEndian.Uint64(k))
		}
		text = append(bytes.Clone(t), '\n')
	}
	m, err := verify.ParseMembershipText(text)
	if err != nil {
		return nil, nil, fmt.Errorf("stored membership: %w", err)
	}
	return m, v, nil
}

// applyMembership applies one KindMembership command. A proposal that does not follow the current
// version is a deterministic rejection; only storage failures are errors.
func applyMembership(tx *bbolt.Tx, c Command) ([]Result, error) {
	res := make([]Result, len(c.Records))
	for i, signed := range c.Records {
		cur, _, err := currentMembership(tx)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			res[i].Err = fmt.Errorf("%w: this network has no genesis membership", verify.ErrMembership)
			continue
		}
		next, _, err := cur.VerifyNext(signed)
		if err != nil {
			res[i].Err = err
			continue
		}
		if err := tx.Bucket(bucketMembership).Put(u64(next.Version), bytes.Clone(signed)); err != nil {
			return nil, err
		}
		res[i].Index = next.Version
	}
	return res, nil
}

// Membership returns the current membership and its stored form (the genesis text for version 1,
// the signed note after), or nil if the ledger has no membership.
func (l *Ledger) Membership() (*verify.Membership, []byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var m *verify.Membership
	var raw []byte
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		var err error
		m, raw, err = currentMembership(tx)
		raw = bytes.Clone(raw)
		return err
	})
	return m, raw, err
}

// MembershipVersion is the version of the current membership, 0 without one.
func (l *Ledger) MembershipVersion() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var v uint64
	_ = l.st.db.View(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bucketMembership).Cursor().Last(); k != nil {
			v = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return v
}
