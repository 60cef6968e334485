package boltstore

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The sentinels carry gRPC codes, so both errors.Is and Trillian's status.Code checks see them
// through %w wrapping.
var (
	// ErrTreeNotFound reports a tree ID with no tree in the file.
	ErrTreeNotFound = status.Error(codes.NotFound, "boltstore: tree not found")
	// ErrTxDone reports use of a transaction after Commit or Close.
	ErrTxDone = status.Error(codes.FailedPrecondition, "boltstore: transaction already committed or closed")
	// ErrNodeMismatch reports an attempt to overwrite a stored Merkle node with a different hash.
	// Perfect-subtree nodes never change, so this means corruption or a fork.
	ErrNodeMismatch = status.Error(codes.Internal, "boltstore: stored Merkle node differs")
	// ErrRootRegression reports a signed log root smaller than the latest stored one.
	ErrRootRegression = status.Error(codes.FailedPrecondition, "boltstore: log root smaller than latest")
	// ErrNotSequenced reports UpdateSequencedLeaves for a leaf that is not in the queue.
	ErrNotSequenced = status.Error(codes.FailedPrecondition, "boltstore: leaf is not queued")
)
