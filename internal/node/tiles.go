package node

import (
	"fmt"
	"strconv"
	"strings"
)

// tileRef is a parsed C2SP tlog-tiles path: /tile/<L>/<N>[.p/<W>] or /tile/entries/<N>[.p/<W>].
type tileRef struct {
	Entries bool
	Level   uint64
	Index   uint64
	Width   uint64 // 256 for a full tile
}

// parseTilePath parses the part of the path after "/tile/". The index is written as groups of
// three digits, every group but the last prefixed with "x" (x001/x234/067 is 1234067).
func parseTilePath(p string) (tileRef, error) {
	var t tileRef
	head, rest, ok := strings.Cut(p, "/")
	if !ok {
		return t, fmt.Errorf("tile path %q: too short", p)
	}
	if head == "entries" {
		t.Entries = true
	} else {
		l, err := strconv.ParseUint(head, 10, 8)
		if err != nil || l > 63 || head != strconv.FormatUint(l, 10) {
			return t, fmt.Errorf("tile path %q: bad level", p)
		}
		t.Level = l
	}
	t.Width = 256
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, err := strconv.ParseUint(rest[i+3:], 10, 16)
		if err != nil || w < 1 || w > 255 || rest[i+3:] != strconv.FormatUint(w, 10) {
			return t, fmt.Errorf("tile path %q: bad partial width", p)
		}
		t.Width, rest = w, rest[:i]
	}
	groups := strings.Split(rest, "/")
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			if !strings.HasPrefix(g, "x") {
				return t, fmt.Errorf("tile path %q: index group %q lacks x", p, g)
			}
			g = g[1:]
		}
		if len(g) != 3 || strings.Trim(g, "0123456789") != "" {
			return t, fmt.Errorf("tile path %q: index group %q", p, g)
		}
		d, _ := strconv.ParseUint(g, 10, 16)
		if t.Index > (1<<63)/1000 {
			return t, fmt.Errorf("tile path %q: index too large", p)
		}
		t.Index = t.Index*1000 + d
	}
	if len(groups) > 1 && strings.TrimLeft(groups[0], "x0") == "" {
		return t, fmt.Errorf("tile path %q: index has leading zero groups", p)
	}
	return t, nil
}
