//go:build unix

package ledger

import (
	"os"
	"unsafe"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// readInOrder tells the kernel that db's file is about to be read through its map from one end
// to the other, and returns a function that puts back the advice bbolt maps it with. bbolt
// advises MADV_RANDOM, under which a page fault reads one 4 KiB page of the file and nothing
// around it: a state.db that is not in the page cache is then read 4 KiB per fault, four faults
// to a 16 KiB page, whichever order the pages are visited in. Read-around is what a pass over
// every leaf needs. The advice is a hint: failing to give it changes nothing but the speed.
func readInOrder(db *bbolt.DB) (restore func()) {
	fi, err := os.Stat(db.Path())
	if err != nil || fi.Size() == 0 {
		return func() {}
	}
	// The map is bbolt's mmap of the file, outside Go's heap: its address, which bbolt hands out
	// as a uintptr, stays valid while db is open and not remapped (the store maps 16 GiB up
	// front, and nothing writes to it while it is checked).
	data := db.Info().Data
	m := unsafe.Slice(*(**byte)(unsafe.Pointer(&data)), fi.Size())
	if unix.Madvise(m, unix.MADV_SEQUENTIAL) != nil {
		return func() {}
	}
	return func() { _ = unix.Madvise(m, unix.MADV_RANDOM) }
}
