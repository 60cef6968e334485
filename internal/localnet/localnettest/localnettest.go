// Package localnettest starts local witnessnet networks (internal/localnet) for tests.
package localnettest

import (
	"context"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/localnet"
)

// Start starts a local network of n nodes in a temporary directory, closed when the test ends,
// and returns it with the index of its leader. Starting and electing a leader may take two
// minutes at most.
func Start(t testing.TB, n int) (*localnet.Network, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	nw, err := localnet.Start(ctx, localnet.Config{Nodes: n, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })
	leader, err := nw.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return nw, leader
}
