// Package compose is the end-to-end fault suite of witnessnet: it runs the four-organization
// network of deploy/docker-compose.yml, drives a workload of concurrent clients against it while
// faults are injected (process kills, pauses, partitions, graceful stops, data corruption), and
// checks the recorded history afterwards.
//
// The checks, all of which MUST hold for a run to pass:
//
//   - Nothing acknowledged is lost: every append that got a 200/201 with an index is at that index
//     on every node once the network has converged.
//   - No duplicates: no entry identity appears twice in any node's log.
//   - No fork and convergence: all nodes hold the same log, and every checkpoint any node published
//     has the root the converged log has at that size.
//   - Every pair of published checkpoints is consistent: the nodes' consistency proofs between
//     successive published sizes verify.
//   - The history is linearizable (github.com/anishathalye/porcupine) against an append-only log
//     whose append returns the entry's index and whose read(index) returns the entry. Operations
//     whose outcome the client never learned (timeouts, 5xx, dropped connections) return at
//     infinity.
//
// The pure parts (workload, history, model, checks) build without tags and have fast unit tests;
// the docker-driven suite is behind the "compose" build tag:
//
//	go test -tags compose -count=1 -timeout 60m ./test/compose/...
//
// It skips, saying why, when no Docker engine answers.
package compose
