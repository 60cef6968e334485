package intoto

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// smallOrder are encodings of the eight points of small order, and non-canonical encodings of
// some of them: the public keys and R values where Ed25519 implementations disagree.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0100000000000000000000000000000000000000000000000000000000000080",
}

// group order L, little endian: S values at or above it are non-canonical.
const orderL = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"

// agree checks the verifier against crypto/ed25519, on its own and through a Key, whose first
// verification uses the key as it is and later ones its precomputed form.
func agree(t testing.TB, pub, msg, sig []byte) {
	t.Helper()
	want := ed25519.Verify(pub, msg, sig)
	if got := verifyFresh(pub, msg, sig); want != got {
		t.Fatalf("pub %x sig %x: crypto/ed25519 says %v, witnessnet says %v", pub, sig, want, got)
	}
	k := &Key{KeyType: "ed25519", Scheme: "ed25519", Public: ed25519.PublicKey(pub)}
	for i := range 3 {
		if got := k.Verify(msg, sig); want != got {
			t.Fatalf("pub %x sig %x: crypto/ed25519 says %v, a Key's verification %d says %v", pub, sig, want, i+1, got)
		}
	}
}

// randomKey draws an Ed25519 key pair from rng.
func randomKey(rng *rand.Rand) (ed25519.PrivateKey, ed25519.PublicKey) {
	seed := make([]byte, ed25519.SeedSize)
	for j := range seed {
		seed[j] = byte(rng.Uint32())
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return priv, priv.Public().(ed25519.PublicKey)
}

// verifyFresh verifies with a key used for the first time (not precomputed), as crypto/ed25519's
// rules demand.
func verifyFresh(pub, msg, sig []byte) bool {
	return (&Key{KeyType: "ed25519", Scheme: "ed25519", Public: ed25519.PublicKey(pub)}).Verify(msg, sig)
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyEd25519MatchesStdlib checks that the faster verifier accepts exactly what
// crypto/ed25519 accepts: valid and tampered signatures, small-order and non-canonical keys and
// R values, non-canonical S. The verification engine uses it: a difference would let a
// consumer accept what in-toto-golang rejects, or the reverse. (Admission accepts a superset;
// see admission.go and TestAdmissionRules.)
func TestVerifyEd25519MatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		priv, pub := randomKey(rng)
		msg := make([]byte, rng.IntN(2048))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if !verifyFresh(pub, msg, sig) {
			t.Fatalf("case %d: a valid signature does not verify", i)
		}
		agree(t, pub, msg, sig)
		bad := append([]byte(nil), sig...)
		bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		agree(t, pub, msg, bad)
		agree(t, pub, append(msg, 0), sig)
		agree(t, pub, msg, sig[:63])
		// S + L: the same scalar, non-canonically encoded.
		l := unhex(t, orderL)
		sl := append([]byte(nil), sig...)
		carry := 0
		for j := range 32 {
			v := int(sl[32+j]) + int(l[j]) + carry
			sl[32+j], carry = byte(v), v>>8
		}
		agree(t, pub, msg, sl)
	}
	zero := make([]byte, 32)
	for _, a := range smallOrder {
		for _, r := range smallOrder {
			for _, msg := range [][]byte{nil, []byte("witnessnet")} {
				agree(t, unhex(t, a), msg, append(unhex(t, r), zero...))
			}
		}
	}
	if verifyFresh(make([]byte, 31), nil, make([]byte, 64)) {
		t.Fatal("a 31-byte public key verifies")
	}
}

// FuzzVerifyEd25519 compares the verifier with crypto/ed25519 on arbitrary keys, messages and
// signatures.
func FuzzVerifyEd25519(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := []byte("payload")
	f.Add([]byte(priv.Public().(ed25519.PublicKey)), msg, ed25519.Sign(priv, msg))
	for _, a := range smallOrder {
		b, _ := hex.DecodeString(a)
		f.Add(b, msg, append(b, make([]byte, 32)...))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return
		}
		agree(t, pub, msg, sig)
	})
}

func BenchmarkVerifyEd25519(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := make([]byte, 1024)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("witnessnet", func(b *testing.B) {
		for b.Loop() {
			verifyFresh(pub, msg, sig)
		}
	})
	b.Run("witnessnet-key-reused", func(b *testing.B) {
		k := &Key{KeyType: "ed25519", Scheme: "ed25519", Public: pub}
		for b.Loop() {
			k.Verify(msg, sig)
		}
	})
}
