package boltstore

import (
	"bytes"
	"testing"

	"github.com/transparency-dev/merkle/compact"
)

// FuzzDecodeKeys feeds arbitrary stored bytes to every key and ref decoder: none may panic, and
// whatever decodes MUST re-encode to the same bytes.
func FuzzDecodeKeys(f *testing.F) {
	f.Add(nodeKey(compact.NewNodeID(8, 3)))
	f.Add(indexKey(1 << 40))
	f.Add(encodeSeqRef(7))
	f.Add(encodeQueueRef(queueKey(-5, bytes.Repeat([]byte{9}, 32))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := decodeNodeKey(b); err == nil && !bytes.Equal(nodeKey(id), b) {
			t.Errorf("node key %x round-trips to %x", b, nodeKey(id))
		}
		if idx, err := decodeIndexKey(b); err == nil && !bytes.Equal(indexKey(idx), b) {
			t.Errorf("index key %x round-trips to %x", b, indexKey(idx))
		}
		if nanos, id, err := decodeQueueKey(b); err == nil && !bytes.Equal(queueKey(nanos, id), b) {
			t.Errorf("queue key %x round-trips to %x", b, queueKey(nanos, id))
		}
		kind, idx, qkey, err := decodeRef(b)
		if err != nil {
			return
		}
		var again []byte
		if kind == refSequenced {
			again = encodeSeqRef(idx)
		} else {
			again = encodeQueueRef(qkey)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("ref %x round-trips to %x", b, again)
		}
	})
}

// TestQueueKeyOrder checks that queue keys sort by time across the epoch.
func TestQueueKeyOrder(t *testing.T) {
	times := []int64{-1 << 62, -1, 0, 1, 1 << 62}
	for i := 1; i < len(times); i++ {
		a, b := queueKey(times[i-1], nil), queueKey(times[i], nil)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("queueKey(%d) >= queueKey(%d)", times[i-1], times[i])
		}
	}
}
