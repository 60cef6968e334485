package intoto

import (
	"os"
	"path/filepath"
	"testing"

	toto "github.com/in-toto/in-toto-golang/in_toto"
)

// TestOracleInTotoGolang runs in-toto-golang's InTotoVerify on the same files as this engine and
// requires the same verdict. Links are written the way the reference tool finds them
// (<step>.<keyid prefix>.link), one functionary per link: co-signed links are witnessnet's own.
func TestOracleInTotoGolang(t *testing.T) {
	c := newChain(t)
	build := func(products map[string]string) []byte { return metablock(t, linkDoc("build", products), c.dev) }
	other := map[string]string{"app": "cc"}
	type link struct {
		f    *functionary
		raw  []byte
		step string
	}
	tests := []struct {
		name   string
		layout func(map[string]any)
		links  []link
	}{
		{"two rebuilders agree", nil, []link{{c.dev, build(app), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", app), c.rb1), "rebuild"}, {c.rb2, dsse(t, linkDoc("rebuild", app), c.rb2), "rebuild"}}},
		{"threshold not met", nil, []link{{c.dev, build(app), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", app), c.rb1), "rebuild"}}},
		{"rebuilders disagree", nil, []link{{c.dev, build(app), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", app), c.rb1), "rebuild"}, {c.rb2, metablock(t, linkDoc("rebuild", app), c.rb2), "rebuild"}, {c.rb3, metablock(t, linkDoc("rebuild", other), c.rb3), "rebuild"}}},
		{"rebuild differs from build", nil, []link{{c.dev, build(app), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", other), c.rb1), "rebuild"}, {c.rb2, metablock(t, linkDoc("rebuild", other), c.rb2), "rebuild"}}},
		{"disallowed product", nil, []link{{c.dev, build(map[string]string{"app": "bb", "x": "dd"}), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", app), c.rb1), "rebuild"}, {c.rb2, metablock(t, linkDoc("rebuild", app), c.rb2), "rebuild"}}},
		{"required product missing", nil, []link{{c.dev, build(nil), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", nil), c.rb1), "rebuild"}, {c.rb2, metablock(t, linkDoc("rebuild", nil), c.rb2), "rebuild"}}},
		{"link signed by the wrong functionary", nil, []link{{c.dev, build(app), "build"}, {c.rb1, metablock(t, linkDoc("rebuild", app), c.dev), "rebuild"}, {c.rb2, metablock(t, linkDoc("rebuild", app), c.rb2), "rebuild"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			doc := c.layoutDoc(tc.layout)
			layoutRaw := metablock(t, doc, c.owner)
			in := c.input(t, doc)
			in.Layout = mustParse(t, layoutRaw)
			for _, l := range tc.links {
				in.Links = append(in.Links, mustParse(t, l.raw))
				name := filepath.Join(dir, l.step+"."+l.f.key.KeyID[:8]+".link")
				if err := os.WriteFile(name, l.raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, ours := Verify(in)

			lp := filepath.Join(dir, "root.layout")
			os.WriteFile(lp, layoutRaw, 0o644)
			kp := filepath.Join(dir, "owner.pub")
			os.WriteFile(kp, []byte(c.owner.pem), 0o644)
			mb, err := toto.LoadMetadata(lp)
			if err != nil {
				t.Fatal(err)
			}
			var k toto.Key
			if err := k.LoadKey(kp, "ed25519", []string{"sha256", "sha512"}); err != nil {
				t.Fatal(err)
			}
			if k.KeyID != c.owner.key.KeyID {
				t.Fatalf("key IDs differ: reference %s, ours %s", k.KeyID, c.owner.key.KeyID)
			}
			_, theirs := toto.InTotoVerify(mb, map[string]toto.Key{k.KeyID: k}, dir, "", in.Params, nil, false)
			if (ours == nil) != (theirs == nil) {
				t.Fatalf("verdicts differ: witnessnet %v, in-toto-golang %v", ours, theirs)
			}
		})
	}
}
