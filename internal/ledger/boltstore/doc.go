// Package boltstore is an embedded, durable Trillian (v1.8) storage provider on bbolt: it
// implements storage.LogStorage and storage.AdminStorage, including PREORDERED_LOG trees, and
// passes Trillian's own conformance suites (integration/storagetest and
// storage/testonly.AdminStorageTester).
//
// # Why bbolt
//
// A node's replicated state lives in one file. bbolt is a single-file, transactional B+tree that
// the node already links (raft-wal uses it). It allows one writer at a time, which fits a raft
// FSM that applies commands serially, and readers never block. Because this provider works on a
// caller's *bbolt.DB and keeps to its own buckets, the ledger can write an entry, its identity,
// its Trillian leaf (AddSequencedLeavesTx) and raft's applied index in ONE transaction.
//
// # Bucket layout
//
// Every top-level bucket name starts with "trillian/"; other buckets in the file are left alone.
//
//	trillian/trees                 tree ID (8B big-endian) -> trillian.Tree (protobuf)
//	trillian/tree/<16 hex of ID>   one per tree, with sub-buckets:
//	  leaf   leaf index (8B BE)                    -> trillian.LogLeaf (protobuf, deterministic)
//	  ident  LeafIdentityHash                      -> 'S' + index (8B BE) | 'Q' + queue key
//	  mhash  MerkleLeafHash + index (8B BE)        -> empty (GetLeavesByHash)
//	  queue  (queue nanos ^ 1<<63) (8B BE) + LeafIdentityHash -> trillian.LogLeaf (LOG trees only)
//	  rowsbyend  end of coverage (16B BE) + level (1B) -> a row: up to 128 node hashes of the level (rows.go)
//	  root   tree size (8B BE)                     -> LogRootV1 bytes, the last root stored at that size
//	  meta   "latest"                              -> LogRootV1 bytes of the latest root
//	  runs   sorted runs of identity and Merkle hash index entries (IndexLeavesTx; see runs.go)
//
// A row holds the nodes of one level whose indexes differ in their low 7 bits only: a presence
// bitmap, then the hashes up to the highest present. The 256 hashes of a C2SP tile (level 8L,
// indexes 256N..256N+255) are two rows, and a commit rewrites the last row of each level it
// reaches rather than putting every node under a key of its own. Rows sort by the number of
// leaves below the end of what they cover, so those a commit rewrites are the last keys of the
// bucket. Files written before rows kept one key per node in a "node" sub-bucket, and files
// written before rows sorted by end kept rows sorted level by level in a "rows" sub-bucket;
// NewLogStorage (and EnsureTree) move both into rowsbyend.
//
// # What Trillian writes, and what is immutable
//
// Trillian's sequencer (log/sequencer.go, updateCompactRange) appends each leaf to a
// compact.Range with a visitor that records every node it reports. compact.Range.Append reports
// the leaf itself, NewNodeID(0, index) with the Merkle leaf hash, and then every perfect subtree
// node it completes; the root is computed with GetRootHash(nil), so ephemeral (imperfect) nodes
// are never stored. Hence SetMerkleNodes receives every level-0 leaf hash and every
// perfect-subtree node, each exactly once, and a stored node never changes. This provider
// enforces that: rewriting a node with a different hash fails with ErrNodeMismatch. For tile
// serving this means a full tile at level L is 256 stored nodes at Merkle level 8L, a partial
// tile of width W is the first W of them, and tile level 0 is the leaf hashes themselves.
//
// Sequenced leaves are immutable too: AddSequencedLeaves never overwrites an index; an identical
// leaf is reported AlreadyExists and a different one FailedPrecondition (a fork, for witnessnet).
// The SQL providers report FailedPrecondition even for an identical re-add; this one follows
// the interface's documented AlreadyExists, which lets a replayed write be told from a fork.
// Trillian's sequencer never updates PREORDERED_LOG leaves, so their IntegrateTimestamp stays
// zero. Log roots may only grow: StoreSignedLogRoot refuses a root smaller than the latest
// (ErrRootRegression). A later root of the same size replaces the earlier one in the history.
//
// # Contracts
//
//   - Durability: every write transaction (ReadWriteTransaction, AddSequencedLeaves, QueueLeaves,
//     admin writes) is fsynced by bbolt before it reports success, unless the caller opened the
//     DB with NoSync. Writes through AddSequencedLeavesTx, and through the storage StorageInTx
//     returns (Trillian's sequencer run inside the caller's transaction), are durable when the
//     caller's transaction commits, and not before; if a ReadWriteTransaction of InTx fails,
//     the caller MUST roll its transaction back.
//   - The caller owns the *bbolt.DB: it MUST keep it open while the storage is used and close it
//     afterwards. The caller MUST NOT write into buckets named "trillian/...".
//   - A goroutine MUST NOT start a write transaction (including these methods) while it holds a
//     snapshot or a write transaction on the same DB: bbolt's writer lock, and its remapping of
//     the file while a reader is open, would deadlock.
//   - Snapshots are bbolt read transactions: they see one consistent state, and MUST be closed
//     (Commit or Close) promptly, or the file cannot reuse freed pages.
//   - PREORDERED_LOG DequeueLeaves ignores its cutoff time, as the MySQL and PostgreSQL providers
//     do: replicas MUST integrate the same leaves regardless of their clocks. LOG trees honour it
//     (leaves queued at or before the cutoff are returned).
//   - Leaf identity hashes, Merkle leaf hashes and Merkle node hashes MUST be 32 bytes (SHA-256).
//   - Tree IDs chosen by AdminStorage.CreateTree are random; EnsureTree creates a tree with an ID
//     the caller picks and stores the empty root Trillian's sequencer needs before its first run.
package boltstore
