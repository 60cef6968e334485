package durable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, strings.NewReader("a longer first version")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, strings.NewReader("second")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("read %q", b)
	}
}

// ReplaceFile leaves the new content and no temporary file beside it.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.json")
	for _, v := range []string{"one", "two"} {
		if err := ReplaceFile(path, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != v {
			t.Fatalf("read %q, want %q", b, v)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %v, want meta.json alone", ents)
	}
	if err := ReplaceFile(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("replaced a file in a directory that does not exist")
	}
}
