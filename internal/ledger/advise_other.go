//go:build !unix

package ledger

import "go.etcd.io/bbolt"

// readInOrder gives no advice where there is no madvise.
func readInOrder(*bbolt.DB) (restore func()) { return func() {} }
