// Package witness is a node's cosigner: it adds C2SP cosignature/v1 signatures to checkpoints and
// guarantees that, for each origin, it never cosigns two checkpoints that are inconsistent with
// each other — across restarts, as long as its state file (witness.db) survives.
//
// The update rule (Decide) is a pure function of the last cosigned state, the new checkpoint and
// a consistency proof. Witness wraps it in one bbolt transaction: read the last state, decide,
// write the new state, commit. Only then is the cosignature produced.
//
// Contracts:
//   - A cosignature MUST NOT leave the witness before the state recording it is durable.
//   - A checkpoint smaller than the last cosigned one, or of the same size with another root, or
//     larger without a valid consistency proof, MUST be refused (ErrRollback, ErrInconsistent),
//     and a refusal MUST NOT change the state.
//   - witness.db is node-local: it is never part of a raft snapshot and never restored from
//     another node. A node whose witness.db is lost must get a new witness key.
package witness
