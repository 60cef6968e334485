package node

import (
	"bytes"
	"errors"
	"slices"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// readmit runs admission again, on the leader, for a record or co-signing contribution a member
// forwarded: the leader replicates only what it would have admitted itself, so a misbehaving
// member cannot append an entry that fails admission, index it under terms of its choosing, or
// close a threshold link's co-signing group with signatures that are not there. Other kinds
// (membership, boundaries) are checked by every replica when applied. Signatures are checked
// through a, as admit checks them.
func (n *Node) readmit(kind ledger.Kind, raw []byte, a *intoto.Admission) error {
	switch kind {
	case ledger.KindEntries:
		var rec ledger.Record
		if err := rec.UnmarshalBinary(raw); err != nil {
			return err
		}
		leaf, err := ledger.ParseLeaf(rec.Leaf)
		if err != nil {
			return err
		}
		env := leaf.Envelope
		if env == nil {
			env = rec.Blob
		}
		adm, err := n.admitEnvelope(env, leaf.Layout, leaf.PublicKeys, a)
		if err != nil {
			return err
		}
		if adm.rec == nil {
			return errors.New("a link of a threshold step outside its co-signing group")
		}
		// A member of an earlier version writes the base64 form of the leaf where this one
		// embeds the envelope: the same envelope, layout and keys, which were just admitted.
		sameLeaf := bytes.Equal(adm.rec.Leaf, rec.Leaf) || adm.rec.Blob == nil && ledger.Base64Form(leaf, rec.Leaf)
		if adm.rec.Identity != rec.Identity || !sameLeaf || !bytes.Equal(adm.rec.Blob, rec.Blob) || !slices.Equal(adm.rec.Terms, rec.Terms) {
			return errors.New("the forwarded record is not what admission makes of its envelope")
		}
	case ledger.KindCosign:
		var con ledger.Contribution
		if err := con.UnmarshalBinary(raw); err != nil {
			return err
		}
		adm, err := n.admitEnvelope(con.Envelope, con.Layout, con.PublicKeys, a)
		if err != nil {
			return err
		}
		c := adm.cosign
		if c == nil || c.Layout != con.Layout || c.Step != con.Step || c.Payload != con.Payload || c.Threshold != con.Threshold ||
			!slices.Equal(c.Signers, con.Signers) || !slices.Equal(c.Terms, con.Terms) {
			return errors.New("the forwarded contribution is not what admission makes of its envelope")
		}
	}
	return nil
}
