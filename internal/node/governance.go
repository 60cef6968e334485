package node

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// governance is the node's view of who the members are and what a checkpoint needs: the
// replicated membership document when the network has one (Config.Genesis), else the static
// policy the node was configured with. Raft's own configuration is never consulted, so a raft
// membership change can neither add a cosigner nor lower the quorum.
type governance struct {
	l               *ledger.Ledger
	static          quorum
	staticVerifiers note.Verifiers

	mu        sync.Mutex
	version   uint64
	cur       *verify.Membership
	verifiers note.Verifiers
}

var (
	_ quorum         = (*governance)(nil)
	_ note.Verifiers = (*governance)(nil)
)

// current returns the replicated membership and its verifiers, or nil without one.
func (g *governance) current() (*verify.Membership, note.Verifiers) {
	v := g.l.MembershipVersion()
	if v == 0 {
		return nil, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if v != g.version {
		m, _, err := g.l.Membership()
		if err != nil || m == nil {
			return g.cur, g.verifiers
		}
		vs := append(m.Policy.LogVerifiers(), m.Policy.WitnessVerifiers()...)
		g.version, g.cur, g.verifiers = m.Version, m, note.VerifierList(vs...)
	}
	return g.cur, g.verifiers
}

// Satisfied applies the current quorum rule.
func (g *governance) Satisfied(names []string) bool {
	if m, _ := g.current(); m != nil {
		return m.Policy.Satisfied(names)
	}
	return g.static.Satisfied(names)
}

// Verifier finds a log or witness key of the current membership.
func (g *governance) Verifier(name string, hash uint32) (note.Verifier, error) {
	if _, vs := g.current(); vs != nil {
		return vs.Verifier(name, hash)
	}
	return g.staticVerifiers.Verifier(name, hash)
}

// membershipResponse is GET /v1/membership.
type membershipResponse struct {
	Version    uint64            `json:"version"`
	Quorum     string            `json:"quorum"`
	Witnesses  []string          `json:"witnesses"`
	Peers      map[string]string `json:"peers,omitempty"`
	Raft       map[string]string `json:"raft,omitempty"`
	Membership string            `json:"membership"` // the genesis text, or the signed note of a later version
}

func (n *Node) handleMembership(w http.ResponseWriter, r *http.Request) {
	m, raw, err := n.ledger.Membership()
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if m == nil {
		n.writeError(w, r, errorf(http.StatusNotFound, "no_membership", "this network is governed by a static policy, not a replicated membership"))
		return
	}
	resp := membershipResponse{Version: m.Version, Quorum: m.Policy.Quorum, Peers: m.Peers, Raft: m.Raft, Membership: string(raw)}
	for _, wt := range m.Policy.Witnesses {
		resp.Witnesses = append(resp.Witnesses, wt.Name)
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleProposeMembership takes the next membership version, signed by members: it is checked
// against the current version here, then replicated, and every replica checks it again.
func (n *Node) handleProposeMembership(w http.ResponseWriter, r *http.Request) {
	signed, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		n.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err))
		return
	}
	cur, _, err := n.ledger.Membership()
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if cur == nil {
		n.writeError(w, r, errorf(http.StatusNotFound, "no_membership", "this network is governed by a static policy, not a replicated membership"))
		return
	}
	next, signers, err := cur.VerifyNext(bytes.TrimLeft(signed, "\r\n"))
	if err != nil {
		n.writeError(w, r, errorf(http.StatusForbidden, "membership_refused", "%v", err))
		return
	}
	res, err := n.proposeNow(r.Context(), ledger.KindMembership, [][]byte{signed})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if res[0].Err != nil {
		// Another version was accepted in between.
		n.writeError(w, r, errorf(http.StatusConflict, "membership_refused", "%v", res[0].Err))
		return
	}
	n.log.Info("membership changed", "version", next.Version, "signed_by", signers)
	writeJSON(w, http.StatusCreated, map[string]any{"version": res[0].Index, "signed_by": signers})
}

// mergeSignatures merges co-signers' envelopes in the ledger: pure and canonical, so every
// replica appends the same bytes.
var mergeSignatures ledger.Merger = intoto.MergeSignatures

// membershipWatch follows the replicated membership: with every version the node applies it
// tells Config.OnMembership (the libp2p allowlist) and starts pushing cosignatures to members it
// did not know; and while this node leads, it keeps raft's voters equal to the members, when
// the document gives every member a raft address.
func (n *Node) membershipWatch(every time.Duration) {
	defer n.wg.Done()
	var seen uint64
	var cur *verify.Membership
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if v := n.ledger.MembershipVersion(); v != seen {
			if m, _, err := n.ledger.Membership(); err == nil && m != nil {
				if n.cfg.OnMembership != nil {
					n.cfg.OnMembership(m.Version, maps.Clone(m.Peers))
				}
				n.collector.pushToMembers(m)
				seen, cur = m.Version, m
			}
		}
		if cur != nil && n.raft.IsLeader() {
			n.followVoters(cur)
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// followVoters makes raft's voters the members of m, if m gives each a raft address.
func (n *Node) followVoters(m *verify.Membership) {
	ids, addrs, ok := m.RaftAddresses(n.cfg.RaftAddress)
	if !ok || n.voters == nil {
		return
	}
	want := make([]consensus.Peer, len(ids))
	for i := range ids {
		want[i] = consensus.Peer{ID: ids[i], Address: addrs[i]}
	}
	changed, err := n.voters.SetVoters(want, 10*time.Second)
	switch {
	case err != nil && !errors.Is(err, consensus.ErrNotLeader):
		n.log.Warn("raft voters do not match the membership yet", "version", m.Version, "err", err)
	case changed:
		n.log.Info("raft voters follow the membership", "version", m.Version, "voters", ids)
	}
}

// memberPeer finds a member's URL and forwarding key: from the configuration, or else from the
// current membership (its policy line's URL and its witness key).
func (n *Node) memberPeer(name string) (Peer, bool) {
	if p, ok := n.peers[name]; ok {
		return p, true
	}
	m, _ := n.quorum.(*governance).current()
	if m == nil {
		return Peer{}, false
	}
	w, ok := m.Policy.Witness(name)
	if !ok {
		return Peer{}, false
	}
	pub, err := WitnessPublicKey(w.VKey)
	if err != nil {
		return Peer{}, false
	}
	return Peer{Name: name, URL: strings.TrimRight(w.URL, "/"), ForwardKey: pub}, true
}
