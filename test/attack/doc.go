// Package attack holds witnessnet's attack suite: members and leaders that lie, run against real
// networks in one process (raft over TCP, Trillian on bbolt, HTTP on loopback). In every case no
// client with the default policy accepts a forked view, and what the liars signed is evidence.
package attack
