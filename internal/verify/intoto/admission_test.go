package intoto

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/witnessnet/witnessnet/internal/verify/intoto/ed25519test"
)

// admitsAlone checks one signature under admission rules at once, and deferred: alone and in a
// batch of valid signatures by another key. All three must agree.
func admitsAlone(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	k := &Key{KeyType: "ed25519", Scheme: "ed25519", Public: ed25519.PublicKey(pub)}
	now := (*Admission)(nil).verify(k, msg, sig)
	alone := &Admission{Defer: true}
	if !alone.verify(k, msg, sig) {
		t.Fatal("a deferred check answered false")
	}
	batch := []*Admission{alone}
	for _, c := range companions(t) {
		a := &Admission{Defer: true}
		a.verify(c.k, c.msg, c.sig)
		batch = append(batch, a)
	}
	if got := VerifyAdmissions(batch[:1])[0]; got != now {
		t.Fatalf("pub %x sig %x: checked at once %v, deferred alone %v", pub, sig, now, got)
	}
	ok := VerifyAdmissions(batch)
	if ok[0] != now || slices.Contains(ok[1:], false) {
		t.Fatalf("pub %x sig %x: checked at once %v, in a batch %v", pub, sig, now, ok)
	}
	return now
}

var companionChecks struct {
	sync.Once
	checks []edCheck
}

// companions are 16 valid signatures by one key, to batch a check with.
func companions(t *testing.T) []edCheck {
	companionChecks.Do(func() {
		f := newFunctionary(t)
		for i := range 16 {
			m := []byte{byte(i)}
			companionChecks.checks = append(companionChecks.checks, edCheck{k: f.key, pub: f.key.Public.(ed25519.PublicKey), msg: m, sig: ed25519.Sign(f.priv, m)})
		}
	})
	return companionChecks.checks
}

// Admission rules accept everything crypto/ed25519 accepts and refuse tampered signatures, and
// deferred checks in batches answer as checks made at once, on the cases where Ed25519
// implementations disagree.
func TestAdmissionRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20 {
		priv, pub := randomKey(rng)
		msg := []byte{byte(i)}
		sig := ed25519.Sign(priv, msg)
		if !admitsAlone(t, pub, msg, sig) {
			t.Fatalf("case %d: a valid signature is not admitted", i)
		}
		bad := slices.Clone(sig)
		bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		if admitsAlone(t, pub, msg, bad) {
			t.Fatalf("case %d: a tampered signature is admitted", i)
		}
		if admitsAlone(t, pub, append(msg, 0), sig) || admitsAlone(t, pub, msg, sig[:63]) {
			t.Fatalf("case %d: a signature over another message, or a short one, is admitted", i)
		}
	}
	zero := make([]byte, 32)
	for _, a := range smallOrder {
		for _, r := range smallOrder {
			for _, msg := range [][]byte{nil, []byte("witnessnet")} {
				pub, sig := unhex(t, a), append(unhex(t, r), zero...)
				if admitted := admitsAlone(t, pub, msg, sig); ed25519.Verify(pub, msg, sig) && !admitted {
					t.Fatalf("pub %x sig %x: crypto/ed25519 accepts, admission refuses", pub, sig)
				}
			}
		}
	}
	if admitsAlone(t, make([]byte, 31), nil, make([]byte, 64)) {
		t.Fatal("a 31-byte public key verifies")
	}
}

// A signature valid under the cofactored equation alone is admitted, at once and in batches
// alike, and refused by crypto/ed25519 and by a Key's Verify (what consumers use).
func TestAdmissionCofactored(t *testing.T) {
	f := newFunctionary(t)
	pub := f.key.Public.(ed25519.PublicKey)
	msg := []byte("a link")
	sig := ed25519test.MixedOrderSignature(f.priv, msg)
	if ed25519.Verify(pub, msg, sig) || f.key.Verify(msg, sig) {
		t.Fatal("crypto/ed25519 accepts the mixed-order signature: the test does not build what it means to")
	}
	if !admitsAlone(t, pub, msg, sig) {
		t.Fatal("admission refuses a signature the cofactored equation accepts")
	}
	if admitsAlone(t, pub, []byte("another link"), sig) {
		t.Fatal("admission accepts the mixed-order signature over another message")
	}
}

// VerifyAdmissions finds the documents whose deferred checks fail, among many; an admission
// that deferred through Metadata.Check took the path of a check made at once when its checks
// hold; and admitting again through Again answers as checking at once.
func TestVerifyAdmissions(t *testing.T) {
	fs := []*functionary{newFunctionary(t), newFunctionary(t), newFunctionary(t)}
	keys := []*Key{fs[0].key, fs[1].key, fs[2].key}
	var as []*Admission
	var ms []*Metadata
	var want []bool
	// More checks than one core takes (batchPerCore): the batches are split.
	for i := range batchPerCore + 10 {
		by := []*functionary{fs[i%3], fs[(i+1)%3]}
		raw := dsse(t, map[string]any{"_type": "link", "name": "build", "n": i}, by...)
		if i%37 == 5 {
			raw = replaceOnce(t, raw, `"sig":"`, `"sig":"AAAA`)
		}
		m := mustParse(t, raw)
		a := &Admission{Defer: true}
		signers, bad := a.Check(m, keys)
		if len(bad) != 0 || len(signers) != 2 {
			t.Fatalf("document %d: deferred checks assumed to hold gave signers %d, unverified %v", i, len(signers), bad)
		}
		nowSigners, nowBad := (&Admission{}).Check(m, keys)
		holds := len(nowBad) == 0
		if holds && !slices.Equal(nowSigners, signers) {
			t.Fatalf("document %d: signers differ between deferred and immediate checks", i)
		}
		as, ms = append(as, a), append(ms, m)
		want = append(want, holds)
	}
	as = append(as, nil)
	want = append(want, true)
	if got := VerifyAdmissions(as); !slices.Equal(got, want) {
		t.Fatalf("VerifyAdmissions = %v\nwant %v", got, want)
	}
	if slices.Index(want, false) < 0 {
		t.Fatal("no document was tampered with")
	}
	for i, m := range ms {
		if want[i] {
			continue
		}
		nowSigners, nowBad := (&Admission{}).Check(m, keys)
		againSigners, againBad := as[i].Again().Check(m, keys)
		if !slices.Equal(againSigners, nowSigners) || !slices.Equal(againBad, nowBad) {
			t.Fatalf("document %d admitted again: signers %d, unverified %v; at once %d, %v", i, len(againSigners), againBad, len(nowSigners), nowBad)
		}
	}
}

// Again answers the checks already made from their results instead of making them twice.
func TestAgainAnswersFromResults(t *testing.T) {
	f := newFunctionary(t)
	m := mustParse(t, dsse(t, map[string]any{"_type": "link", "name": "build"}, f))
	a := &Admission{Defer: true}
	a.Check(m, []*Key{f.key})
	if ok := VerifyAdmissions([]*Admission{a}); !ok[0] {
		t.Fatal("a valid signature failed")
	}
	// A recorded answer that says otherwise is believed: the check is not made again.
	a.checks[0].valid = false
	if _, bad := a.Again().Check(m, []*Key{f.key}); len(bad) != 1 {
		t.Fatalf("Again made a check it had the answer to: unverified %v", bad)
	}
	if _, bad := (&Admission{}).Check(m, []*Key{f.key}); len(bad) != 0 {
		t.Fatalf("checked at once: unverified %v", bad)
	}
}

// FuzzAdmission checks on arbitrary keys, messages and signatures that admission accepts
// whatever crypto/ed25519 accepts, and that a check deferred into a batch answers as the check
// made at once.
func FuzzAdmission(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("payload")
	f.Add([]byte(pub), msg, ed25519.Sign(priv, msg))
	for _, a := range smallOrder {
		b, _ := hex.DecodeString(a)
		f.Add(b, msg, append(b, make([]byte, 32)...))
	}
	companion := &Key{KeyType: "ed25519", Scheme: "ed25519", Public: pub}
	csig := ed25519.Sign(priv, []byte("companion"))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		k := &Key{KeyType: "ed25519", Scheme: "ed25519", Public: ed25519.PublicKey(pub)}
		now := (*Admission)(nil).verify(k, msg, sig)
		if len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig) && !now {
			t.Fatalf("pub %x sig %x: crypto/ed25519 accepts, admission refuses", pub, sig)
		}
		a, c := &Admission{Defer: true}, &Admission{Defer: true}
		a.verify(k, msg, sig)
		c.verify(companion, []byte("companion"), csig)
		if ok := VerifyAdmissions([]*Admission{a, c}); ok[0] != now || !ok[1] {
			t.Fatalf("pub %x sig %x: checked at once %v, in a batch %v", pub, sig, now, ok)
		}
	})
}

// BenchmarkVerifyAdmissions measures Ed25519 checks of 1 KiB messages under admission rules,
// made at once and deferred into batches of n, per signature. Run with -cpu 1 for the cost on
// one core (VerifyAdmissions spreads large batches over GOMAXPROCS cores).
func BenchmarkVerifyAdmissions(b *testing.B) {
	f := newFunctionary(b)
	for _, n := range []int{1, 16, 64, 200} {
		as := make([]*Admission, n)
		type check struct{ msg, sig []byte }
		checks := make([]check, n)
		for i := range as {
			msg := fmt.Appendf(nil, "%d %01020d", i, i)
			checks[i] = check{msg, ed25519.Sign(f.priv, msg)}
			as[i] = &Admission{Defer: true}
			as[i].verify(f.key, msg, checks[i].sig)
		}
		b.Run(fmt.Sprintf("at-once-%d", n), func(b *testing.B) {
			for b.Loop() {
				for _, c := range checks {
					if !(*Admission)(nil).verify(f.key, c.msg, c.sig) {
						b.Fatal("a valid signature failed")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N*n), "µs/signature")
		})
		b.Run(fmt.Sprintf("batched-%d", n), func(b *testing.B) {
			for b.Loop() {
				if slices.Contains(VerifyAdmissions(as), false) {
					b.Fatal("a valid signature failed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N*n), "µs/signature")
		})
	}
}

// The batch equation holds for valid signatures by several keys, each key's signatures sharing
// one term, and fails when one signature is presented under another key, when one message is
// changed, or when two keys' signatures are swapped between their messages. The checks that do
// not decode are left out of it, a key's point kept from an earlier batch included.
func TestBatchEquation(t *testing.T) {
	fs := []*functionary{newFunctionary(t), newFunctionary(t), newFunctionary(t)}
	var checks []edCheck
	for i := range 60 {
		f := fs[i%len(fs)]
		if i >= 50 {
			f = fs[0] // most by one key, as a rebuilder's batch is
		}
		msg := fmt.Appendf(nil, "entry %d", i)
		checks = append(checks, edCheck{k: f.key, pub: f.key.Public.(ed25519.PublicKey), msg: msg, sig: ed25519.Sign(f.priv, msg)})
	}
	at, holds := batchHolds(checks)
	if !holds || len(at) != len(checks) {
		t.Fatalf("valid signatures by %d keys: the batch equation holds %v over %d of %d", len(fs), holds, len(at), len(checks))
	}
	tampered := map[string]func(c []edCheck){
		"a signature under another key": func(c []edCheck) { c[4].k, c[4].pub = c[5].k, c[5].pub },
		"another message":               func(c []edCheck) { c[7].msg = []byte("entry 7, changed") },
		"two signatures swapped":        func(c []edCheck) { c[1].sig, c[2].sig = c[2].sig, c[1].sig },
	}
	for name, tamper := range tampered {
		c := slices.Clone(checks)
		tamper(c)
		if _, holds := batchHolds(c); holds {
			t.Fatalf("%s: the batch equation holds", name)
		}
		valid := make([]bool, len(c))
		verifyBatch(c, valid)
		for i, v := range valid {
			if want := (*Admission)(nil).verify(c[i].k, c[i].msg, c[i].sig); v != want {
				t.Fatalf("%s: check %d in the batch %v, at once %v", name, i, v, want)
			}
		}
		if !slices.Contains(valid, false) {
			t.Fatalf("%s: every check holds", name)
		}
	}
	c := slices.Clone(checks)
	c[9].sig = addOrderToS(c[9].sig)
	c[10].pub = make([]byte, 31)
	if (*Admission)(nil).verify(c[9].k, c[9].msg, c[9].sig) {
		t.Fatal("a signature with S one order larger is admitted at once")
	}
	at, holds = batchHolds(c)
	if !holds || len(at) != len(c)-2 || slices.Contains(at, 9) || slices.Contains(at, 10) {
		t.Fatalf("two checks that do not decode: the equation holds %v over %v", holds, at)
	}
	valid := make([]bool, len(c))
	verifyBatch(c, valid)
	if valid[9] || valid[10] || slices.Contains(valid[:9], false) || slices.Contains(valid[11:], false) {
		t.Fatalf("two checks that do not decode: valid %v", valid)
	}
}

// addOrderToS returns sig with the group order added to its S: the same S modulo the order, an
// encoding admission refuses.
func addOrderToS(sig []byte) []byte {
	order := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := slices.Clone(sig)
	var carry uint16
	for i := range 32 {
		v := uint16(out[32+i]) + uint16(order[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}
