package intoto

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseVector(t testing.TB, name string) *Metadata {
	t.Helper()
	m, err := ParseMetadata(readVector(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func aliceKey(t testing.TB) *Key {
	k, err := ParseKeyPEM(readVector(t, "alice.pub"), "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// demoNow is inside every demo layout's validity.
var demoNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestReferenceVectorsVerify(t *testing.T) {
	if id := aliceKey(t).KeyID; id != "70ca5750c2eda80b18f41f4ec5f92146789b5d68dd09577be422a0159bd13680" {
		t.Fatalf("alice's key ID %s differs from the reference tools'", id)
	}
	product := map[string]DigestSet{"foo.tar.gz": DigestOf(readVector(t, "foo.tar.gz"))}
	tests := []struct {
		layout   string
		links    []string
		products map[string]DigestSet
	}{
		{"demo.layout", []string{"write-code.b7d643de.link", "package.d3ffd108.link"}, product},
		{"demo.dsse.layout", []string{"write-code.b7d643de.link", "package.d3ffd108.link"}, product},
		{"dsse-only.root.layout", []string{"clone-dsse.776a00e2.link", "update-version-dsse.776a00e2.link", "package-dsse.2f89b927.link"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.layout, func(t *testing.T) {
			in := VerifyInput{Layout: parseVector(t, tc.layout), LayoutKeys: []*Key{aliceKey(t)}, Products: tc.products, Now: demoNow}
			for _, l := range tc.links {
				in.Links = append(in.Links, parseVector(t, l))
			}
			rep, err := Verify(in)
			if err != nil {
				t.Fatalf("verify: %v\nreport: %+v", err, rep)
			}
			for _, s := range rep.Steps {
				if len(s.Counted) != 1 {
					t.Errorf("step %s counted %v", s.Name, s.Counted)
				}
			}
		})
	}
}

func TestReferenceVectorsMustFail(t *testing.T) {
	product := map[string]DigestSet{"foo.tar.gz": DigestOf(readVector(t, "foo.tar.gz"))}
	links := func(names ...string) []*Metadata {
		var out []*Metadata
		for _, n := range names {
			out = append(out, parseVector(t, n))
		}
		return out
	}
	base := func() VerifyInput {
		return VerifyInput{Layout: parseVector(t, "demo.layout"), LayoutKeys: []*Key{aliceKey(t)},
			Links: links("write-code.b7d643de.link", "package.d3ffd108.link"), Products: product, Now: demoNow}
	}
	tests := []struct {
		name   string
		mutate func(*VerifyInput)
		want   error
	}{
		{"expired", func(in *VerifyInput) { in.Now = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrExpired},
		{"expires exactly now", func(in *VerifyInput) { in.Now = in.Layout.Layout.Expires }, ErrExpired},
		{"missing link", func(in *VerifyInput) { in.Links = in.Links[:1] }, ErrMissingLink},
		{"tampered final product", func(in *VerifyInput) {
			in.Products = map[string]DigestSet{"foo.tar.gz": DigestOf([]byte("not the package"))}
		}, ErrProductMismatch},
		{"wrong layout key", func(in *VerifyInput) {
			k, _ := ParseKeyPEM([]byte(testPEM(t)), "")
			in.LayoutKeys = []*Key{k}
		}, ErrLayoutSignature},
		{"tampered layout", func(in *VerifyInput) {
			raw := replaceOnce(t, readVector(t, "demo.layout"), `"threshold": 1`, `"threshold": 2`)
			in.Layout, _ = ParseMetadata(raw)
		}, ErrLayoutSignature},
		{"renamed link", func(in *VerifyInput) {
			// The package link's file is replaced by another step's link: links count by their
			// signed name, not by where they were found.
			in.Links = links("write-code.b7d643de.link", "write-code.b7d643de.link")
		}, ErrMissingLink},
		{"tampered link", func(in *VerifyInput) {
			raw := replaceOnce(t, readVector(t, "package.d3ffd108.link"), `"name": "package"`, `"name": "package", "x": 1`)
			m, err := ParseMetadata(raw)
			if err != nil {
				t.Fatal(err)
			}
			in.Links[1] = m
		}, ErrMissingLink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(&in)
			if _, err := Verify(in); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
