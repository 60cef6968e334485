// Package consensus orders and replicates witnessnet's commands among the member nodes with
// hashicorp/raft (v1.8.0), whose log and stable store is raft-wal (v0.4.1) on disk. Its
// snapshots copy nothing: the state machine's durable state is the snapshot, and the leader
// streams it to a member its log no longer reaches (snapshots.go).
//
// What it guarantees:
//   - Every member applies the same commands in the same order (raft's log). A command is
//     applied at most once to the durable state: the state machine records its applied index in
//     the same transaction as the command's effects, and entries at or below it are skipped when
//     raft replays its log after a restart.
//   - Propose MUST NOT return a response before the command is committed by a quorum and applied
//     on this node. When leadership is lost while a proposal is in flight it returns
//     ErrLeadershipLost: the outcome is unknown (the next leader may still commit it), never a
//     false success. Callers make resubmission safe by deduplicating (the ledger does, by entry
//     identity).
//   - A new leader proposes only after a Barrier: every command of earlier terms is applied to its
//     own state first.
//   - Shutdown of a leader transfers leadership to another voter before raft stops, so a
//     SIGTERM'd leader costs no election timeout. Order: transfer, raft shutdown, WAL close.
//   - Raft's network transport (TCP or libp2p) replicates through pipelines whose responses are
//     always read (pipeline.go): with raft v1.8.0's own, a follower that refused one append could
//     stop receiving entries for as long as the leader lived, and the leader's Shutdown could
//     hang.
//   - Pre-vote stays on (raft's default), so a member that was cut off and comes back does not
//     disrupt a healthy leader.
//
// What it does not guarantee: integrity. A malicious leader can stall or reorder commands; it
// cannot make a client accept a forged or forked log, because every node recomputes its own tree
// and cosigns only its own root (see internal/ledger and internal/witness).
//
// Commands are batches: EncodeCommand/DecodeCommand carry a kind, the proposer's clock (no
// clock is read inside Apply) and any number of records. Raft's BatchApplyCh hands several
// committed commands to one Apply call, which the ledger turns into one transaction.
package consensus
