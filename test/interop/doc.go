// Package interop checks witnessnet against other implementations of the specs it speaks. It is
// a module of its own so that their dependencies stay out of witnessnet's go.mod; run it with
// `cd test/interop && go test ./...` (.ci/run does).
//
// tlogwitness_test.go drives a node's POST /add-checkpoint with the tlog-witness client of
// transparency-dev/witness (client/http) through every status row of C2SP tlog-witness.
package interop
