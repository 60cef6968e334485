package node

import "testing"

func TestParseTilePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want tileRef
		bad  bool
	}{
		{in: "0/000", want: tileRef{Level: 0, Index: 0, Width: 256}},
		{in: "1/x001/x234/067", want: tileRef{Level: 1, Index: 1234067, Width: 256}},
		{in: "entries/005.p/17", want: tileRef{Entries: true, Index: 5, Width: 17}},
		{in: "2/001.p/255", want: tileRef{Level: 2, Index: 1, Width: 255}},
		{in: "0/1", bad: true},
		{in: "0/000.p/0", bad: true},
		{in: "0/000.p/256", bad: true},
		{in: "0/000.p/017", bad: true},
		{in: "00/000", bad: true},
		{in: "0/x000/001", bad: true},
		{in: "0/001/002", bad: true},
		{in: "entries", bad: true},
		{in: "x/000", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTilePath(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseTilePath(f *testing.F) {
	f.Add("1/x001/x234/067.p/5")
	f.Fuzz(func(t *testing.T, p string) {
		_, _ = parseTilePath(p)
	})
}
