// Package ed25519test makes Ed25519 signatures that implementations disagree on, for tests of
// the rules witnessnet verifies by.
package ed25519test

import (
	"crypto/ed25519"
	"crypto/sha512"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// MixedOrderSignature signs msg with R = [r]B + T, T a point of order 8: RFC 8032's cofactored
// equation holds and the cofactorless one, which crypto/ed25519 checks, does not. Making one
// takes the private key, as any signature does.
func MixedOrderSignature(priv ed25519.PrivateKey, msg []byte) []byte {
	h := sha512.Sum512(priv.Seed())
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	var a, r, k, s scalar.Scalar
	must(a.SetBytesModOrder(h[:32]))
	// The nonce need not be secret here: the key is a test's.
	nonce := sha512.Sum512(append(h[32:], msg...))
	must(r.SetBytesModOrderWide(nonce[:]))
	var R curve.EdwardsPoint
	R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &r)
	R.Add(&R, curve.EIGHT_TORSION[1])
	var rc curve.CompressedEdwardsY
	rc.SetEdwardsPoint(&R)
	d := sha512.New()
	d.Write(rc[:])
	d.Write(priv.Public().(ed25519.PublicKey))
	d.Write(msg)
	must(k.SetBytesModOrderWide(d.Sum(nil)))
	s.Mul(&k, &a)
	s.Add(&s, &r)
	sig := append([]byte(nil), rc[:]...)
	var sb [32]byte
	if err := s.ToBytes(sb[:]); err != nil {
		panic(err)
	}
	return append(sig, sb[:]...)
}

func must(_ *scalar.Scalar, err error) {
	if err != nil {
		panic(err)
	}
}
