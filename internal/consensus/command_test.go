package consensus

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func TestCommandRoundTrip(t *testing.T) {
	stamp := time.Unix(1700000000, 123).UTC()
	for _, recs := range [][][]byte{nil, {{}}, {[]byte("a"), bytes.Repeat([]byte("b"), 300)}} {
		b := EncodeCommand(7, stamp, recs)
		c, err := DecodeCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != 7 || !c.Stamp.Equal(stamp) || len(c.Records) != len(recs) {
			t.Fatalf("got %+v", c)
		}
		for i := range recs {
			if !bytes.Equal(c.Records[i], recs[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	}
	good := EncodeCommand(1, stamp, [][]byte{[]byte("x")})
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{9}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"count":     append(append([]byte{}, good[:10]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := DecodeCommand(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(EncodeCommand(1, time.Unix(1, 0), [][]byte{[]byte("rec")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if out := EncodeCommand(c.Kind, c.Stamp, c.Records); !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes")
		}
	})
}

func TestSplit(t *testing.T) {
	rec := func(n int) []byte { return bytes.Repeat([]byte{'r'}, n) }
	var many [][]byte
	for i := range 1000 {
		many = append(many, rec(900+i%300))
	}
	huge := rec(SplitBytes + 1)
	for name, recs := range map[string][][]byte{
		"none":          nil,
		"one":           {rec(10)},
		"many":          many,
		"huge alone":    {rec(10), huge, rec(10)},
		"huge first":    {huge, rec(SplitBytes / 2), rec(SplitBytes / 2)},
		"exactly fills": {rec(SplitBytes - 2 - 8 - 3*binary.MaxVarintLen64 - 100), rec(100)},
	} {
		groups := Split(recs)
		var back [][]byte
		for i, g := range groups {
			size := len(EncodeCommand(1, time.Unix(1, 0), g))
			if size > SplitBytes && len(g) > 1 {
				t.Errorf("%s: group %d of %d records encodes to %d bytes, over %d", name, i, len(g), size, SplitBytes)
			}
			// Groups are as full as they can be: the next record would not have fitted.
			if i+1 < len(groups) {
				next := append(append([][]byte{}, g...), groups[i+1][0])
				if n := len(EncodeCommand(1, time.Unix(1, 0), next)); n <= SplitBytes-len(next)*(binary.MaxVarintLen64-1) {
					t.Errorf("%s: group %d ends early: with the next record it would take %d bytes", name, i, n)
				}
			}
			back = append(back, g...)
		}
		if len(back) != len(recs) {
			t.Fatalf("%s: %d records in the groups, %d given", name, len(back), len(recs))
		}
		for i := range recs {
			if &back[i][0] != &recs[i][0] {
				t.Fatalf("%s: record %d is not the one given at that position", name, i)
			}
		}
		if len(groups) == 0 {
			t.Errorf("%s: no group", name)
		}
	}
	if g := Split(many); len(g) < 4 {
		t.Errorf("1,000 records of about 1 KiB in %d groups", len(g))
	}
	if g := Split([][]byte{rec(10), huge, rec(10)}); len(g) != 3 {
		t.Errorf("a record over SplitBytes between small ones: %d groups, want 3", len(g))
	}
}
