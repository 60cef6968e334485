// Package ledger is a node's replicated state: the entries of the log, the node's own Trillian
// tree (type PREORDERED_LOG) over them, and a search index.
//
// The raft state machine calls Apply with committed commands. In one bbolt transaction Apply
// deduplicates each record by identity, assigns the next index, stores the leaf in Trillian's
// storage at that index (through the embedded provider in package boltstore, which shares the
// file), and records the raft index it applied. Either all of a batch is durable or none of it is;
// after a restart raft replays from its last snapshot and Apply skips what the file already holds.
// Trillian's identity and Merkle-hash index entries, and the search terms, are written behind
// Apply, in bulk and as sorted runs (package runs), by the sequencer goroutine; until then the
// identities are held in memory (see unindexed.go) and the terms in records Apply appends (see
// index.go), so lookups, deduplication and searches see every applied entry either way.
//
// Trillian's own sequencer (log.IntegrateBatch) integrates the leaves into the tree on every
// node, so every node computes its Merkle root itself; nothing trusts another node's root. It runs
// inside Apply's transaction (through boltstore.InTx), so the entries of a command and the tree
// over them are written and fsynced together, and Apply returns with the tree covering what it
// applied. Integration stops at every checkpoint boundary (a replicated command proposed by the
// leader), storing the root there, before the commands after it add more; the sequencer
// goroutine then calls the OnBoundary hook for each boundary reached, in order, with the node's
// root at exactly that size, which is the size every node cosigns. The sequencer goroutine also
// integrates any entries a state.db holds applied but not integrated (written before Apply
// integrated).
//
// Contracts:
//   - An index returned by Apply MUST NOT change: a different leaf at an occupied index is a fork,
//     and Apply panics rather than serve it (ErrFork).
//   - Apply MUST NOT read a clock, randomness or the network: the proposer stamps the time.
//   - Restore MUST recompute the tree root from the restored leaves and refuse a snapshot whose
//     stored tree disagrees (ErrTreeMismatch).
//   - Proofs, tiles and entry bundles are served only up to the size the node has integrated.
//
// The leaf data format is Leaf (JSON); tile entry bundles carry leaves of at most 64 KiB, and a
// larger envelope is committed to by digest and stored beside the tree.
package ledger
