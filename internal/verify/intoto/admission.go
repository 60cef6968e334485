package intoto

import (
	"bytes"
	"crypto/ed25519"
	"runtime"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// admissionRules are the Ed25519 rules under which a log admits signatures: crypto/ed25519's
// encodings (small-order and non-canonical public keys allowed, canonical R and S required) with
// RFC 8032's cofactored equation, [8][S]B = [8]R + [8][k]A, where crypto/ed25519 checks the
// cofactorless [S]B = R + [k]A. The cofactored equation can be checked for many signatures at
// once, in about half the time per signature (see VerifyAdmissions).
//
// They accept every signature crypto/ed25519 accepts, and beyond those only signatures whose R
// carries a small-order component: making one takes the private key, as any signature does, so
// what admission proves (the key's holder signed the document) is unchanged. Consumers verify
// with crypto/ed25519's rules, as in-toto-golang does, and so refuse such a signature; the only
// one it costs is the holder who made it, except where signatures count toward a threshold (see
// CheckLink). Auditors check the log's admissions under the same rules.
var admissionRules = &voi.Options{Verify: &voi.VerifyOptions{
	AllowSmallOrderA:   true,
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: true,
}}

// An Admission checks a document's signatures under the rules a log admits them by. With Defer
// set, it records each Ed25519 check instead of making it and lets the document's admission go
// on as if the check held; VerifyAdmissions then makes the checks of many documents at once. An
// admission whose checks all hold took the path it would have taken checking at once; one whose
// checks do not must be admitted again, checking at once, through Again. Checks of other key
// types are made at once either way.
type Admission struct {
	Defer  bool
	checks []edCheck
	known  []edCheck // checks already made, with their answers, for a second admission
}

type edCheck struct {
	k        *Key
	pub      ed25519.PublicKey
	msg, sig []byte
	valid    bool // once verified
}

// Again returns an Admission that checks at once, for admitting again a document whose
// deferred checks did not all hold; the checks VerifyAdmissions made are answered from its
// results rather than made twice.
func (a *Admission) Again() *Admission {
	if a == nil {
		return nil
	}
	return &Admission{known: a.checks}
}

// Check is Metadata.Check under admission rules. A nil or zero Admission checks at once, as an
// auditor checks what the log admitted.
func (a *Admission) Check(m *Metadata, keys []*Key) (signers []*Key, unverified []int) {
	return m.check(keys, a.verify)
}

// CheckLink checks the signatures of a link of step against the step's functionaries. A
// signature that counts toward a threshold must be one consumers count too: a threshold step's
// link is checked at once under crypto/ed25519's rules (Metadata.Check), as the verification
// engine checks it, so that no functionary can close a co-signing group with a signature
// consumers refuse and keep the other functionaries' signatures out. Other links are checked as
// Check checks them.
func (a *Admission) CheckLink(m *Metadata, funcs []*Key, step *Step) (signers []*Key, unverified []int) {
	if step.Threshold > 1 {
		return m.Check(funcs)
	}
	return a.Check(m, funcs)
}

func (a *Admission) verify(k *Key, msg, sig []byte) bool {
	pub, ok := k.Public.(ed25519.PublicKey)
	if !ok {
		return k.Verify(msg, sig)
	}
	if a != nil && a.Defer {
		a.checks = append(a.checks, edCheck{k: k, pub: pub, msg: msg, sig: sig})
		return true
	}
	if a != nil {
		for _, c := range a.known {
			if c.k == k && bytes.Equal(c.sig, sig) && bytes.Equal(c.msg, msg) {
				return c.valid
			}
		}
	}
	return k.verifyEd25519(pub, msg, sig, admissionRules)
}

// batchPerCore is the fewest checks worth a core of their own. A batch costs less per signature
// the larger it is (by one key, about 45% of a check made alone at 16 signatures, 36% at 64 and
// 31% at 200, on one core here: BenchmarkVerifyAdmissions), and on a loaded node the other cores
// have work of their own, so a batch is split only when it is large.
const batchPerCore = 256

// VerifyAdmissions makes the checks the admissions deferred and reports, for each, whether all of
// its checks hold (a nil admission has none). The checks are verified in batches, on up to
// GOMAXPROCS cores; a batch that fails is checked one signature at a time to find which failed.
func VerifyAdmissions(as []*Admission) []bool {
	var checks []edCheck
	type ref struct{ a, c int }
	var owner []ref
	for i, a := range as {
		if a == nil {
			continue
		}
		for j, c := range a.checks {
			checks = append(checks, c)
			owner = append(owner, ref{i, j})
		}
	}
	valid := make([]bool, len(checks))
	if parts := min(runtime.GOMAXPROCS(0), len(checks)/batchPerCore); parts > 1 {
		per := (len(checks) + parts - 1) / parts
		var wg sync.WaitGroup
		for lo := 0; lo < len(checks); lo += per {
			hi := min(lo+per, len(checks))
			wg.Go(func() { verifyBatch(checks[lo:hi], valid[lo:hi]) })
		}
		wg.Wait()
	} else if len(checks) > 0 {
		verifyBatch(checks, valid)
	}
	ok := make([]bool, len(as))
	for i := range ok {
		ok[i] = true
	}
	for j, v := range valid {
		o := owner[j]
		as[o.a].checks[o.c].valid = v
		if !v {
			ok[o.a] = false
		}
	}
	return ok
}
