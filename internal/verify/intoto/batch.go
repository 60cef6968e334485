package intoto

import (
	"crypto/rand"
	"crypto/sha512"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// verifyBatch sets valid[i] to whether checks[i] holds under admission rules.
//
// The checks are made as one: for random 128-bit z_i, the cofactored batch equation
//
//	[-Σ z_i·s_i]B + Σ [z_i]R_i + Σ_A [Σ_{i signed by A} z_i·k_i]A = 0 (up to small order)
//
// holds, but for a chance of about 2^-128, only if every [8][s_i]B = [8]R_i + [8][k_i]A_i holds
// (k_i is H(R_i‖A_i‖m_i)). Signatures by one key share one term: a log's submissions come from
// a few functionaries, each signing many, so the multiplication has about one point per
// signature (its R) where a batch verifier that takes each signature on its own has two (as
// curve25519-voi's does); the whole check costs about 30% less per signature at 200
// (BenchmarkVerifyAdmissions). When the equation fails, each signature is checked alone to find
// which fail.
//
// A signature that does not decode under admission rules (S not below the group order, R not
// a canonical encoding of a curve point, a key that is not a curve point) fails without taking
// part, as it fails a check made alone.
func verifyBatch(checks []edCheck, valid []bool) {
	var at []int
	if len(checks) > 1 {
		var holds bool
		if at, holds = batchHolds(checks); holds {
			for _, i := range at {
				valid[i] = true
			}
			return
		}
	} else {
		at = []int{0}
	}
	for _, i := range at {
		c := checks[i]
		valid[i] = c.k.verifyEd25519(c.pub, c.msg, c.sig, admissionRules)
	}
}

// batchHolds returns the checks that decode under admission rules, and whether the batch
// equation holds for them (false for fewer than two).
func batchHolds(checks []edCheck) (decoded []int, holds bool) {
	n := len(checks)
	zs := make([]byte, 16*n)
	rand.Read(zs)
	var (
		b       scalar.Scalar // -Σ z_i·s_i
		scalars = make([]*scalar.Scalar, 1, 1+n+1)
		points  = make([]*curve.EdwardsPoint, 1, 1+n+1)
		rs      = make([]curve.EdwardsPoint, n)
		zsc     = make([]scalar.Scalar, n)
		keys    = map[string]int{} // key bytes -> index of the key's term in scalars and points
		in      = make([]int, 0, n)
		wide    [32]byte
		digest  [64]byte
		h       = sha512.New()
	)
	scalars[0], points[0] = &b, curve.ED25519_BASEPOINT_POINT
	for i, c := range checks {
		var s scalar.Scalar
		if !decodeSignature(c.sig, &rs[i], &s) {
			continue
		}
		at, ok := keys[string(c.pub)]
		if !ok {
			a := c.k.edwardsPoint(c.pub)
			if a == nil {
				keys[string(c.pub)] = -1
				continue
			}
			at = len(points)
			keys[string(c.pub)] = at
			scalars, points = append(scalars, new(scalar.Scalar)), append(points, a)
		}
		if at < 0 {
			continue
		}
		h.Reset()
		h.Write(c.sig[:32])
		h.Write(c.pub)
		h.Write(c.msg)
		var k scalar.Scalar
		if _, err := k.SetBytesModOrderWide(h.Sum(digest[:0])); err != nil {
			continue
		}
		copy(wide[:16], zs[16*i:])
		z := &zsc[i]
		if _, err := z.SetBytesModOrder(wide[:]); err != nil {
			continue
		}
		var t scalar.Scalar
		b.Add(&b, t.Mul(z, &s))
		scalars[at].Add(scalars[at], t.Mul(z, &k))
		scalars, points = append(scalars, z), append(points, &rs[i])
		in = append(in, i)
	}
	b.Neg(&b)
	if len(in) < 2 {
		return in, false
	}
	var sum curve.EdwardsPoint
	return in, sum.MultiscalarMulVartime(scalars, points).IsSmallOrder()
}

// decodeSignature decodes sig's R and S under admission rules: S below the group order, R a
// canonical encoding of a curve point (of any order).
func decodeSignature(sig []byte, r *curve.EdwardsPoint, s *scalar.Scalar) bool {
	if len(sig) != 64 || !scalar.ScMinimalVartime(sig[32:]) {
		return false
	}
	var rc curve.CompressedEdwardsY
	if _, err := rc.SetBytes(sig[:32]); err != nil || !rc.IsCanonicalVartime() {
		return false
	}
	if _, err := r.SetCompressedY(&rc); err != nil {
		return false
	}
	_, err := s.SetBytesModOrder(sig[32:])
	return err == nil
}

// decodeKey decodes an Ed25519 public key under admission rules: any encoding of a curve point,
// of any order.
func decodeKey(pub []byte, a *curve.EdwardsPoint) bool {
	var ac curve.CompressedEdwardsY
	if _, err := ac.SetBytes(pub); err != nil {
		return false
	}
	_, err := a.SetCompressedY(&ac)
	return err == nil
}
