// Package durable writes files that survive a crash once the call returns: the data is synced
// before the file is closed, and a file replaced through a rename has its directory synced too.
package durable

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// WriteFile creates path (or truncates it), copies r into it and syncs it.
func WriteFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReplaceFile replaces path with data: written to a temporary file beside it and synced, renamed
// over path, and the directory synced. A reader sees the old file or the new one, never part.
func ReplaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	if err := WriteFile(name, bytes.NewReader(data)); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return SyncDir(dir)
}

// SyncDir syncs a directory, so that the entries created, renamed or removed in it last.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
