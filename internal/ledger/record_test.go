package ledger

import (
	"bytes"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func TestNewLeafSmallAndLarge(t *testing.T) {
	small := []byte(`{"payloadType":"t","payload":"","signatures":[]}`)
	leaf, blob, err := NewLeaf(small, "sha256:ab", []string{"PEM"})
	if err != nil || blob != nil {
		t.Fatalf("small: blob=%v err=%v", blob != nil, err)
	}
	l, err := ParseLeaf(leaf)
	if err != nil || !bytes.Equal(l.Envelope, small) || l.Layout != "sha256:ab" {
		t.Fatalf("small round trip: %+v %v", l, err)
	}
	large := []byte(strings.Repeat("x", 70000))
	leaf, blob, err = NewLeaf(large, "", nil)
	if err != nil || !bytes.Equal(blob, large) || len(leaf) > MaxBundleEntry {
		t.Fatalf("large: leaf=%d blob=%d err=%v", len(leaf), len(blob), err)
	}
	l, err = ParseLeaf(leaf)
	if err != nil || l.EnvelopeSize != len(large) || l.Envelope != nil {
		t.Fatalf("large round trip: %+v %v", l, err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf"), Blob: []byte("blob")}
	b, _ := r.MarshalBinary()
	var got Record
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Identity != r.Identity || !bytes.Equal(got.Leaf, r.Leaf) || !bytes.Equal(got.Blob, r.Blob) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range [][]byte{nil, {2}, append(b, 0), b[:len(b)-1]} {
		if err := new(Record).UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%x) accepted", bad)
		}
	}
}

func TestRecordTermsRoundTrip(t *testing.T) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf"), Terms: []string{"type:link", "step:x/build"}}
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := got.UnmarshalBinary(b); err != nil || len(got.Terms) != 2 || got.Terms[1] != "step:x/build" {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range [][]string{{""}, {"a\x00b"}, {string(make([]byte, MaxTermBytes+1))}} {
		if _, err := (&Record{Leaf: []byte("l"), Terms: bad}).MarshalBinary(); err == nil {
			t.Errorf("terms %q accepted", bad)
		}
	}
}

func FuzzRecord(f *testing.F) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf")}
	b, _ := r.MarshalBinary()
	f.Add(b)
	r.Terms = []string{"type:link", "digest:sha256:00"}
	b, _ = r.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := r.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes: %x -> %x", b, out)
		}
	})
}

func TestParseIdentity(t *testing.T) {
	id := IdentityOf([]byte("x"))
	got, err := ParseIdentity(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "sha256:", "sha256:zz", "md5:" + id.String()[7:], id.String() + "00"} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}

// TestLeafHasher checks leafHasher against rfc6962.DefaultHasher, reusing one hasher across
// leaves of different sizes.
func TestLeafHasher(t *testing.T) {
	var lh leafHasher
	for _, leaf := range [][]byte{nil, {}, []byte("a"), bytes.Repeat([]byte{0xff}, 63), bytes.Repeat([]byte("leaf"), 500), []byte("a")} {
		want := rfc6962.DefaultHasher.HashLeaf(leaf)
		if got := lh.hash(leaf); !bytes.Equal(got[:], want) {
			t.Fatalf("%d-byte leaf: %x, want %x", len(leaf), got, want)
		}
	}
}
