package node

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, c := range []struct {
		name        string
		size, limit int64
	}{
		{"unknown size", -1, 1 << 20},
		{"exact size", int64(len(data)), 1 << 20},
		{"announced less than sent", 10, 1 << 20},
		{"announced more than sent", int64(len(data)) * 2, 1 << 20},
		{"announced more than the limit", 1 << 30, int64(len(data))},
	} {
		t.Run(c.name, func(t *testing.T) {
			// One byte per read: the buffer fills and grows at every boundary.
			got, err := readBody(iotest.OneByteReader(bytes.NewReader(data)), c.size, c.limit)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("readBody = %d bytes, %v; want %d bytes", len(got), err, len(data))
			}
		})
	}
	t.Run("over the limit", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r := http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(data)), 100)
		_, err := readBody(r, int64(len(data)), 100)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			t.Fatalf("err = %v, want *http.MaxBytesError", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := readBody(iotest.ErrReader(boom), 10, 100); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})
}
