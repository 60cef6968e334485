// Package p2p is a member's libp2p host: its identity, the allowlist of member peers, the raft
// stream layer, and gossip of cosigned checkpoints and evidence.
//
// Each member's node identity is an Ed25519 key; its peer ID is listed in the network's
// membership. Connections are TCP with Noise and yamux, optionally inside a private network
// (pre-shared key); relays, hole punching, NAT traversal and public discovery are off.
//
// Contracts:
//   - The connection gater decides after the security handshake (InterceptSecured), when the
//     remote peer is authenticated: a peer not listed as a member MUST NOT get a connection, and
//     therefore cannot open a stream. Dialing a non-member is refused too.
//   - The raft stream layer MUST NOT hand raft a stream from a non-member: it checks the
//     membership again when it accepts a stream (after the gater, in case membership changed).
//   - Removing a member closes its connections.
//   - Gossip widens the set of vantage points from which checkpoints are seen; correctness never
//     depends on a gossip message being delivered. Validators reject messages whose signatures
//     do not verify and accept, but raise, inconsistent ones.
//
// The raft transport is hashicorp/raft's NetworkTransport over libp2p streams, through
// go-libp2p's gostream; go-libp2p-raft, which does the same, cannot be downloaded here and is
// unmaintained, so this package is the small replacement. Raft's pre-vote works unchanged: it is
// raft's protocol, carried like any other RPC.
package p2p
