package intoto

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerify10kArtifacts parses and verifies a layout and a link recording 10,000 products
// (compare: go run ./test/bench -rows verify, which runs in-toto-golang on the same files).
func BenchmarkVerify10kArtifacts(b *testing.B) {
	owner, dev := newFunctionary(b), newFunctionary(b)
	products := map[string]any{}
	for i := range 10000 {
		products[fmt.Sprintf("dist/file-%05d.bin", i)] = map[string]string{"sha256": DigestOf(fmt.Appendf(nil, "%d", i))["sha256"]}
	}
	layout := metablock(b, map[string]any{
		"_type": "layout", "expires": "2036-01-01T00:00:00Z", "readme": "", "inspect": []any{}, "keys": keysOf(dev),
		"steps": []any{map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{dev.key.KeyID},
			"expected_command": []string{}, "expected_materials": [][]string{}, "expected_products": [][]string{{"CREATE", "dist/*"}, {"DISALLOW", "*"}}}},
	}, owner)
	link := metablock(b, map[string]any{"_type": "link", "name": "build", "command": []string{}, "materials": map[string]any{},
		"products": products, "byproducts": map[string]any{}, "environment": map[string]any{}}, dev)
	b.ResetTimer()
	for b.Loop() {
		l, err := ParseMetadata(layout)
		if err != nil {
			b.Fatal(err)
		}
		k, err := ParseMetadata(link)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(VerifyInput{Layout: l, LayoutKeys: []*Key{owner.key}, Links: []*Metadata{k}, Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}
