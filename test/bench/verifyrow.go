package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	toto "github.com/in-toto/in-toto-golang/in_toto"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// chainFixture is a one-step supply chain whose link records n products, signed as metablocks
// (the format both engines read from files).
type chainFixture struct {
	dir        string
	layout     []byte
	link       []byte
	ownerPEM   []byte
	linkName   string
	products   map[string]intoto.DigestSet
	layoutKeys []*intoto.Key
}

func newChain(n int) (*chainFixture, error) {
	dir, err := os.MkdirTemp("", "witnessnet-bench-verify-")
	if err != nil {
		return nil, err
	}
	owner, ownerKey, ownerPEM := benchKey()
	dev, devKey, _ := benchKey()
	products := map[string]intoto.DigestSet{}
	wire := map[string]any{}
	for i := range n {
		d := intoto.DigestOf(fmt.Appendf(nil, "artifact %d", i))
		name := fmt.Sprintf("dist/file-%05d.bin", i)
		products[name], wire[name] = d, map[string]string{"sha256": d["sha256"]}
	}
	layout := map[string]any{
		"_type": "layout", "expires": "2036-01-01T00:00:00Z", "readme": "", "inspect": []any{},
		"keys": map[string]any{devKey.KeyID: devKey.JSON()},
		"steps": []any{map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{devKey.KeyID},
			"expected_command": []string{}, "expected_materials": [][]string{},
			"expected_products": [][]string{{"CREATE", "dist/*"}, {"DISALLOW", "*"}}}},
	}
	link := map[string]any{"_type": "link", "name": "build", "command": []string{}, "materials": map[string]any{},
		"products": wire, "byproducts": map[string]any{}, "environment": map[string]any{}}
	f := &chainFixture{dir: dir, ownerPEM: ownerPEM, products: products, layoutKeys: []*intoto.Key{ownerKey},
		linkName: "build." + devKey.KeyID[:8] + ".link"}
	if f.layout, err = metablock(layout, owner, ownerKey.KeyID); err != nil {
		return nil, err
	}
	if f.link, err = metablock(link, dev, devKey.KeyID); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dir, "root.layout"), f.layout, 0o644)
	os.WriteFile(filepath.Join(dir, "owner.pub"), ownerPEM, 0o644)
	os.WriteFile(filepath.Join(dir, f.linkName), f.link, 0o644)
	return f, nil
}

func benchKey() (ed25519.PrivateKey, *intoto.Key, []byte) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	k, _ := intoto.ParseKeyPEM(p, "")
	return priv, k, p
}

func metablock(doc any, priv ed25519.PrivateKey, keyID string) ([]byte, error) {
	raw, _ := json.Marshal(doc)
	c, err := intoto.Canonicalize(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"signed": json.RawMessage(raw),
		"signatures": []map[string]string{{"keyid": keyID, "sig": hex.EncodeToString(ed25519.Sign(priv, c))}}})
}

// benchVerify times verification of the same supply chain three ways: witnessnet's engine on the
// documents, in-toto-golang's InTotoVerify on the same files, and client verify against a 3-node
// network (fetch, proofs against a cosigned checkpoint, then the engine).
func benchVerify(ctx context.Context, o options, t *table) error {
	nw, stop, err := startNet(ctx, 3, nil)
	if err != nil {
		return err
	}
	defer stop()
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		return err
	}
	for _, n := range []int{10, 1000, 10000} {
		f, err := newChain(n)
		if err != nil {
			return err
		}
		ours := timeIt(5, func() error {
			lay, err := intoto.ParseMetadata(f.layout)
			if err != nil {
				return err
			}
			link, err := intoto.ParseMetadata(f.link)
			if err != nil {
				return err
			}
			_, err = intoto.Verify(intoto.VerifyInput{Layout: lay, LayoutKeys: f.layoutKeys, Links: []*intoto.Metadata{link}, Now: time.Now()})
			return err
		})
		theirs := timeIt(5, func() error {
			mb, err := toto.LoadMetadata(filepath.Join(f.dir, "root.layout"))
			if err != nil {
				return err
			}
			var k toto.Key
			if err := k.LoadKey(filepath.Join(f.dir, "owner.pub"), "ed25519", []string{"sha256", "sha512"}); err != nil {
				return err
			}
			_, err = toto.InTotoVerify(mb, map[string]toto.Key{k.KeyID: k}, f.dir, "", map[string]string{}, nil, false)
			return err
		})
		online, err := verifyOnline(nw.URLs(), policy, f)
		os.RemoveAll(f.dir)
		if err != nil {
			return err
		}
		t.add(fmt.Sprintf("verify a link with %d artifacts", n), ours.String(),
			fmt.Sprintf("witnessnet engine, parse + verify, best of 5; against the log with proofs: %s", online.Round(time.Microsecond)),
			fmt.Sprintf("in-toto-golang InTotoVerify: %s", theirs))
	}
	return nil
}

type measured struct {
	d   time.Duration
	err error
}

func (m measured) String() string {
	if m.err != nil {
		return "error: " + m.err.Error()
	}
	return m.d.Round(time.Microsecond).String()
}

func timeIt(runs int, fn func() error) measured {
	best := time.Duration(1<<63 - 1)
	for range runs {
		t0 := time.Now()
		if err := fn(); err != nil {
			return measured{err: err}
		}
		best = min(best, time.Since(t0))
	}
	return measured{d: best}
}

// verifyOnline registers the chain in the network and times a client verification against it.
func verifyOnline(urls []string, policy *verify.Policy, f *chainFixture) (time.Duration, error) {
	a := client.NewAPI(urls[0])
	_, out, err := client.Submit(a, f.layout, "", []string{string(f.ownerPEM)})
	if err != nil {
		return 0, err
	}
	layoutID := fmt.Sprint(out["entry"])
	if _, _, err := client.Submit(a, f.link, layoutID, nil); err != nil {
		return 0, err
	}
	// The first fetch waits for a cosigned checkpoint that covers the link; the second is timed.
	if _, _, err := client.FetchBundle(policy, urls, layoutID, time.Minute); err != nil {
		return 0, err
	}
	t0 := time.Now()
	b, _, err := client.FetchBundle(policy, urls, layoutID, time.Minute)
	if err != nil {
		return 0, err
	}
	if _, err := client.VerifyBundle(policy, b, client.VerifyOptions{Layout: layoutID, LayoutKeys: f.layoutKeys}); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
