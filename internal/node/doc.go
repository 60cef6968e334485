// Package node is one member's witness node: it admits entries, replicates them through
// internal/consensus into internal/ledger, computes and cosigns checkpoints of its own tree with
// internal/witness, exchanges cosignatures with the other members, and serves the HTTP API.
//
// The path of an entry:
//
//  1. POST /v1/entries (or /v1/entries/batch): a member that does not lead relays the
//     submissions, signed with its witness key, to the leader (POST /v1/internal/submit), which
//     takes them only from members. The leader's admission parses the body strictly, bounds its
//     size, and checks every signature (and, for in-toto links, that each signer is a functionary
//     of the named step of a layout already in the log and that the layout has not expired). Bad
//     input is answered 4xx with a JSON reason; nothing is replicated.
//  2. The proposer queue groups concurrent admissions into one raft command, or several back to
//     back beyond consensus.SplitBytes. Records admitted by
//     a node that lost leadership before proposing them are forwarded to the new leader
//     (POST /v1/internal/propose), which admits them again.
//  3. Every replica applies the committed command (ledger.Apply) and Trillian's sequencer
//     integrates the leaves; the node's root is its own computation.
//  4. At each checkpoint boundary (a replicated command the leader proposes on a timer) the node
//     signs a checkpoint of its own root with the log key, cosigns it with its witness key
//     (witness.CosignOwn: consistent with everything it cosigned before, persisted first), and
//     pushes the cosigned note to the other members. GET /checkpoint serves the newest
//     checkpoint that carries a quorum of cosignatures.
//
// Threshold links (an in-toto step with threshold k) short of k authorized signers become
// co-signing groups in replicated state (ledger.KindCosign); the merged envelope is appended when
// the k-th distinct functionary signs.
//
// Contracts:
//   - A 201 or 200 from POST /v1/entries MUST NOT be sent before a raft quorum has committed the
//     entry; its index never changes afterwards.
//   - The node MUST NOT cosign a checkpoint it did not compute itself, nor one inconsistent with
//     one it cosigned before (witness.CosignOwn enforces the second across restarts).
//   - A peer cosignature that is inconsistent with what the node computed is never counted
//     towards a quorum; it raises witnessnet_inconsistent_cosignatures_total and an alarm line.
//   - Shutdown order: stop accepting HTTP, stop the node's loops (proposer and relay workers,
//     checkpoint collector), shut raft down (transferring leadership first when leading), close its
//     transport, close the ledger, close the witness state.
package node
