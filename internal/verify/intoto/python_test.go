package intoto

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPythonReferenceLink verifies a link recorded by in-toto's Python tool, unchanged, against a
// layout the Python tool also accepts.
func TestPythonReferenceLink(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "python", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	owner, err := ParseKeyPEM(read("owner.pub"), "")
	if err != nil {
		t.Fatal(err)
	}
	in := VerifyInput{
		Layout: mustParse(t, read("root.layout")), LayoutKeys: []*Key{owner},
		Links:    []*Metadata{mustParse(t, read("build.4afea99c.link"))},
		Products: map[string]DigestSet{"out.txt": DigestOf(read("out.txt"))},
		Now:      time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if in.Links[0].Format != FormatMetablock || in.Links[0].Link.Name != "build" {
		t.Fatalf("the Python link parsed as %+v", in.Links[0])
	}
	rep, err := Verify(in)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Steps[0].Counted) != 1 || len(rep.Warnings) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	in.Products = map[string]DigestSet{"out.txt": DigestOf([]byte("tampered\n"))}
	if _, err := Verify(in); !errors.Is(err, ErrProductMismatch) {
		t.Fatalf("tampered product: %v", err)
	}
}
