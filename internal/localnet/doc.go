// Package localnet makes witnessnet networks on one machine: key sets, the C2SP policy and the
// genesis membership for N members (what `witness testnet` writes to disk), and whole networks
// started in one process on loopback (what `witness demo` and the benchmarks run).
//
// A network started here is the real thing, not a simulation: raft over TCP with its WAL on disk,
// each node's ledger and witness state in bbolt under the network's directory, HTTP on loopback.
// Only the process boundary is missing.
package localnet
