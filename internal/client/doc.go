// Package client is the client side of witnessnet, shared by cmd/client and the demo: talking
// to nodes, recording a step (materials, command, products), signing layouts and links in either
// envelope format, co-signing pending threshold links, and verifying a supply chain against the
// log: checkpoints checked against a C2SP policy and across servers, every document's inclusion
// proven, bundles of C2SP tlog-proofs for offline use.
//
// Nothing here trusts a server: entries are checked against their identity and Merkle leaf,
// checkpoints against the policy's keys and quorum, proofs against the checkpoint's root.
package client

import (
	"errors"
	"fmt"
)

var (
	// ErrCheck means a verification failed: the answer is no, not "could not ask".
	ErrCheck = errors.New("check failed")
	// ErrUsage means the caller asked for something malformed.
	ErrUsage = errors.New("usage")
)

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}
