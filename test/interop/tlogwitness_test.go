package interop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	whttp "github.com/transparency-dev/witness/client/http"
	twitness "github.com/transparency-dev/witness/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/node"
)

// TestTlogWitnessClient runs a one-node witnessnet network configured to witness a foreign log
// and drives its POST /add-checkpoint with transparency-dev/witness's client through every status
// row; each answer must decode to the error that row means.
func TestTlogWitnessClient(t *testing.T) {
	const origin = "example.com/foreign"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, _ := note.NewSigner(skey)
	logVerifier, _ := note.NewVerifier(vkey)
	otherSkey, _, _ := note.GenerateKey(rand.Reader, origin)
	impostor, _ := note.NewSigner(otherSkey)
	strangerSkey, _, _ := note.GenerateKey(rand.Reader, "example.com/stranger")
	stranger, _ := note.NewSigner(strangerSkey)

	ctx := context.Background()
	nw, err := localnet.Start(ctx, localnet.Config{Nodes: 1, Dir: t.TempDir(), Tune: func(c *node.Config) {
		c.WitnessedLogs = map[string][]note.Verifier{origin: {logVerifier}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	u, err := url.Parse(nw.URLs()[0])
	if err != nil {
		t.Fatal(err)
	}
	client := whttp.NewWitness(u, http.DefaultClient)
	cosigVerifier, err := fnote.NewVerifierForCosignatureV1(nw.Members[0].WitVkey)
	if err != nil {
		t.Fatal(err)
	}

	a, b := testonly.New(rfc6962.DefaultHasher), testonly.New(rfc6962.DefaultHasher)
	for i := range 40 {
		a.AppendData([]byte(fmt.Sprintf("a%d", i)))
		b.AppendData([]byte(fmt.Sprintf("b%d", i)))
	}
	cp := func(s note.Signer, o string, tr *testonly.Tree, size uint64) []byte {
		signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", o, size, base64.StdEncoding.EncodeToString(tr.HashAt(size)))}, s)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	proof := func(tr *testonly.Tree, from, to uint64) [][]byte {
		p, err := tr.ConsistencyProof(from, to)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, r := range []struct {
		name     string
		old      uint64
		cp       []byte
		proof    [][]byte
		want     error  // nil: cosigned
		wantSize uint64 // with ErrCheckpointStale
	}{
		{"unknown log (404)", 0, cp(stranger, "example.com/stranger", a, 5), nil, twitness.ErrUnknownLog, 0},
		{"no trusted signature (403)", 0, cp(impostor, origin, a, 5), nil, twitness.ErrNoValidSignature, 0},
		{"old > size (400)", 9, cp(logSigner, origin, a, 5), nil, twitness.ErrOldSizeInvalid, 0},
		{"first contact, old != 0 (409)", 3, cp(logSigner, origin, a, 10), proof(a, 3, 10), twitness.ErrCheckpointStale, 0},
		{"first contact", 0, cp(logSigner, origin, a, 10), nil, nil, 0},
		{"stale old size (409)", 5, cp(logSigner, origin, a, 20), proof(a, 5, 20), twitness.ErrCheckpointStale, 10},
		{"bad proof (422)", 10, cp(logSigner, origin, a, 20), proof(a, 9, 20), twitness.ErrInvalidProof, 0},
		{"fork (422)", 10, cp(logSigner, origin, b, 20), proof(b, 10, 20), twitness.ErrInvalidProof, 0},
		{"same size, another root (422)", 10, cp(logSigner, origin, b, 10), nil, twitness.ErrInvalidProof, 0},
		{"consistent growth", 10, cp(logSigner, origin, a, 20), proof(a, 10, 20), nil, 0},
		{"stale after growth (409)", 10, cp(logSigner, origin, a, 30), proof(a, 10, 30), twitness.ErrCheckpointStale, 20},
	} {
		t.Run(r.name, func(t *testing.T) {
			sigs, size, err := client.Update(ctx, r.old, r.cp, r.proof)
			if r.want == nil {
				if err != nil {
					t.Fatalf("Update: %v", err)
				}
				if _, err := note.Open(append(append([]byte(nil), r.cp...), sigs...), note.VerifierList(cosigVerifier)); err != nil {
					t.Fatalf("the cosignature %q does not verify: %v", sigs, err)
				}
				return
			}
			if !errors.Is(err, r.want) {
				t.Fatalf("Update: %v, want %v", err, r.want)
			}
			if errors.Is(err, twitness.ErrCheckpointStale) && size != r.wantSize {
				t.Fatalf("409 says size %d, want %d", size, r.wantSize)
			}
		})
	}
}
