package consensus

import (
	"bytes"
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
