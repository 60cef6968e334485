package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/witnessnet/witnessnet/internal/verify"
	"golang.org/x/mod/sumdb/note"
)

// cosigner is the node's witness for its own log: it cosigns a checkpoint only if it is
// consistent with the last one it cosigned, which it persists before returning the cosignature.
type cosigner interface {
	CosignOwn(ctx context.Context, signedCheckpoint []byte, proof func(oldSize uint64) ([][]byte, error)) (note.Signature, error)
	Close() error
}

// quorum decides whether a set of witness names satisfies the network's policy.
type quorum interface {
	Satisfied(witnesses []string) bool
}

// cosigned is one checkpoint body and the signatures collected for it.
type cosigned struct {
	raw    []byte // the first peer note that brought this body, kept for evidence
	size   uint64
	body   string                    // the checkpoint text
	logSig *note.Signature           // this node's log signature, once it has computed the same root
	cosigs map[string]note.Signature // witness name -> cosignature
}

func (c *cosigned) names() []string {
	out := make([]string, 0, len(c.cosigs))
	for name := range c.cosigs {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// note renders the checkpoint with this node's log signature and every cosignature collected.
func (c *cosigned) note() []byte {
	var b strings.Builder
	b.WriteString(c.body)
	b.WriteString("\n")
	writeSig(&b, *c.logSig)
	for _, name := range c.names() {
		writeSig(&b, c.cosigs[name])
	}
	return []byte(b.String())
}

func writeSig(b *strings.Builder, s note.Signature) {
	fmt.Fprintf(b, "\u2014 %s %s\n", s.Name, s.Base64)
}

// checkpointBody is the C2SP tlog-checkpoint text for a tree.
func checkpointBody(origin string, size uint64, root []byte) string {
	return origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n"
}

// collector gathers cosignatures per checkpoint size and publishes the newest checkpoint that
// carries a quorum. It keeps a bounded window of sizes.
type collector struct {
	n       *Node
	mu      sync.Mutex
	sizes   map[uint64]*cosigned
	latest  *cosigned // newest own cosigned checkpoint (pushed to peers)
	pub     *cosigned // newest checkpoint with a quorum
	pubNote []byte
	push    map[string]chan struct{} // per peer: wake the pusher

	// halted is set once a member cosigned two inconsistent checkpoints (two roots at one
	// size): the node stops cosigning its log until an operator has looked at the evidence.
	halted   bool
	evidence []Evidence
	// signedBy remembers, per member, the checkpoint bodies it cosigned by size (a window).
	signedBy map[string]map[uint64]signedNote
}

type signedNote struct {
	body string
	raw  []byte
}

// Evidence records checkpoints that cannot both be true. Kind "disagrees": members cosigned a
// checkpoint whose root differs from the one this node computed at that size (Theirs and Ours).
// Kind "equivocation": one member cosigned two different roots at one size (Theirs and Ours are
// both that member's notes); the node then stops cosigning.
type Evidence struct {
	Kind    string    `json:"kind"`
	Found   time.Time `json:"found"`
	Size    uint64    `json:"size"`
	Signers []string  `json:"signers"` // witnesses on the note(s) in question
	Theirs  string    `json:"theirs"`
	Ours    string    `json:"ours,omitempty"`
}

// recordEvidence keeps evidence of a disagreement with this node's tree and raises the alarm.
// The disagreeing cosignatures never count toward a quorum here. Caller holds mu.
func (c *collector) recordEvidence(size uint64, theirs []byte, signers []string, ours *cosigned) {
	e := Evidence{Kind: "disagrees", Found: time.Now().UTC(), Size: size, Signers: signers, Theirs: string(theirs)}
	if ours != nil && ours.logSig != nil && !strings.HasPrefix(string(theirs), ours.body) {
		e.Ours = string(ours.note())
	}
	if !c.addEvidence(e) {
		return
	}
	c.n.metrics.inconsistent.Inc()
	c.n.log.Error("ALARM: members cosigned a checkpoint that disagrees with this node's tree; evidence at /v1/evidence",
		"size", size, "signers", signers)
}

// noteSigned remembers what each member cosigned and catches a member that cosigned two roots
// at one size: evidence naming it, and this node stops cosigning. Caller holds mu.
func (c *collector) noteSigned(size uint64, body string, raw []byte, signers []string) {
	if c.signedBy == nil {
		c.signedBy = map[string]map[uint64]signedNote{}
	}
	for _, m := range signers {
		seen := c.signedBy[m]
		if seen == nil {
			seen = map[uint64]signedNote{}
			c.signedBy[m] = seen
		}
		prev, ok := seen[size]
		if !ok {
			if len(seen) >= collectorWindow {
				clear(seen)
			}
			seen[size] = signedNote{body: body, raw: raw}
			continue
		}
		if prev.body == body {
			continue
		}
		if !c.addEvidence(Evidence{Kind: "equivocation", Found: time.Now().UTC(), Size: size, Signers: []string{m},
			Theirs: string(raw), Ours: string(prev.raw)}) {
			continue
		}
		c.halted = true
		c.n.metrics.inconsistent.Inc()
		c.n.log.Error("ALARM: a member cosigned two different checkpoints of one size; cosigning stopped, evidence at /v1/evidence",
			"size", size, "member", m)
	}
}

// addEvidence keeps e unless the same record (kind, size, the same notes in either order) is
// already kept, and gossips it when it is new. Caller holds mu.
func (c *collector) addEvidence(e Evidence) bool {
	for _, o := range c.evidence {
		if o.Kind == e.Kind && o.Size == e.Size &&
			((o.Theirs == e.Theirs && o.Ours == e.Ours) || (o.Theirs == e.Ours && o.Ours == e.Theirs)) {
			return false
		}
	}
	c.evidence = append(c.evidence, e)
	if err := c.keepEvidence(e); err != nil {
		c.n.log.Error("could not write evidence to disk; it is kept in memory", "err", err)
	}
	c.n.gossipEvidence(e)
	return true
}

// Evidences returns the evidence this node holds.
func (c *collector) Evidences() []Evidence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Evidence{}, c.evidence...) // [] rather than null in JSON when there is none
}

const collectorWindow = 512

func newCollector(n *Node) *collector {
	return &collector{n: n, sizes: map[uint64]*cosigned{}, push: map[string]chan struct{}{}}
}

// onBoundary is the ledger's hook: the tree stands at a checkpoint boundary. The node signs its own
// root, asks its witness to cosign (refused if inconsistent with what it cosigned before), and
// offers the result to its peers.
func (c *collector) onBoundary(ctx context.Context, size uint64, root []byte) {
	n := c.n
	c.mu.Lock()
	halted := c.halted
	c.mu.Unlock()
	if halted {
		n.metrics.cosignRefused.Inc()
		n.log.Error("ALARM: not cosigning: evidence of an inconsistent member cosignature is pending review", "size", size)
		return
	}
	body := checkpointBody(n.cfg.Origin, size, root)
	signed, err := note.Sign(&note.Note{Text: body}, n.cfg.LogSigner)
	if err != nil {
		n.log.Error("sign checkpoint", "size", size, "err", err)
		return
	}
	cosig, err := n.witness.CosignOwn(ctx, signed, func(old uint64) ([][]byte, error) {
		return n.ledger.ConsistencyProof(ctx, old, size)
	})
	if err != nil {
		n.metrics.cosignRefused.Inc()
		n.log.Error("ALARM: refusing to cosign own checkpoint", "size", size, "root", base64.StdEncoding.EncodeToString(root), "err", err)
		return
	}
	logSig, err := firstSig(signed, n.logVerifier)
	if err != nil {
		n.log.Error("own checkpoint", "err", err)
		return
	}
	n.metrics.cosigned.Set(float64(size))
	c.mu.Lock()
	cp := c.entry(size, body)
	if cp.body != body {
		c.recordEvidence(size, cp.raw, cp.names(), nil)
		c.mu.Unlock()
		c.dropInconsistent(size, body)
		return
	}
	cp.logSig = &logSig
	cp.cosigs[n.cfg.Name] = cosig
	c.latest = cp
	c.evaluate(cp)
	c.mu.Unlock()
	c.wakePushers()
}

// entry returns the collection for size, creating it with body. Caller holds mu.
func (c *collector) entry(size uint64, body string) *cosigned {
	cp, ok := c.sizes[size]
	if !ok {
		cp = &cosigned{size: size, body: body, cosigs: map[string]note.Signature{}}
		c.sizes[size] = cp
		c.trim()
	}
	return cp
}

// dropInconsistent forgets peer cosignatures at size that are over another body: this node only
// ever publishes its own root.
func (c *collector) dropInconsistent(size uint64, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.sizes[size]; ok && cp.body != body {
		delete(c.sizes, size)
	}
}

func (c *collector) trim() {
	if len(c.sizes) <= collectorWindow {
		return
	}
	sizes := make([]uint64, 0, len(c.sizes))
	for s := range c.sizes {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	for _, s := range sizes[:len(sizes)-collectorWindow] {
		delete(c.sizes, s)
	}
}

// evaluate publishes cp if it is ours, newer than what is published, and has a quorum.
func (c *collector) evaluate(cp *cosigned) {
	if cp == c.pub && cp.logSig != nil {
		// More cosignatures for the published checkpoint (a member that was slower, or joined):
		// publish them too; a checkpoint with more cosigners survives stricter policies.
		if note := cp.note(); !bytes.Equal(note, c.pubNote) {
			c.pubNote = note
			c.n.metrics.publishedCosigs.Set(float64(len(cp.cosigs)))
		}
		return
	}
	if cp.logSig == nil || (c.pub != nil && cp.size <= c.pub.size) {
		return
	}
	if !c.n.quorum.Satisfied(cp.names()) {
		return
	}
	c.pub = cp
	c.pubNote = cp.note()
	c.n.gossip(checkpointTopic(c.n.cfg.Origin), c.pubNote)
	c.n.metrics.published.Set(float64(cp.size))
	c.n.metrics.publishedCosigs.Set(float64(len(cp.cosigs)))
}

// published returns the newest checkpoint note with a quorum, or nil.
func (c *collector) published() ([]byte, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub == nil {
		return nil, 0
	}
	return c.pubNote, c.pub.size
}

// addPeerNote takes a checkpoint note pushed by a peer: its cosignatures count toward that size.
// Only cosignatures from the policy's witnesses, verified, are kept; the log signature on it is
// checked so that nobody but members can fill the window.
func (c *collector) addPeerNote(data []byte) error {
	n := c.n
	parsed, err := note.Open(data, n.noteVerifiers)
	if err != nil {
		return fmt.Errorf("open note: %w", err)
	}
	hasLog := false
	var sigs []note.Signature
	for _, s := range parsed.Sigs {
		if s.Name == n.cfg.Origin {
			hasLog = true
			continue
		}
		if s.Name != n.cfg.Name {
			sigs = append(sigs, s)
		}
	}
	if !hasLog {
		return fmt.Errorf("note has no log signature by a member")
	}
	size, err := checkpointSize(parsed.Text, n.cfg.Origin)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.noteSigned(size, parsed.Text, data, sigNames(sigs))
	c.mu.Unlock()
	// Whatever its size, a member's checkpoint must agree with the tree this node computed.
	if size <= n.ledger.TreeSize() {
		if root, err := n.ledger.RootAt(context.Background(), size); err == nil && checkpointBody(n.cfg.Origin, size, root) != parsed.Text {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.recordEvidence(size, data, sigNames(sigs), c.sizes[size])
			return fmt.Errorf("checkpoint at size %d disagrees with this node's tree", size)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil && size < c.pub.size {
		return nil
	}
	cp := c.entry(size, parsed.Text)
	if cp.raw == nil {
		cp.raw = data
	}
	if cp.body != parsed.Text {
		c.recordEvidence(size, data, sigNames(sigs), cp)
		return fmt.Errorf("checkpoint at size %d disagrees with this node's tree", size)
	}
	for _, s := range sigs {
		cp.cosigs[s.Name] = s
	}
	c.evaluate(cp)
	return nil
}

func sigNames(sigs []note.Signature) []string {
	out := make([]string, len(sigs))
	for i, s := range sigs {
		out[i] = s.Name
	}
	return out
}

// checkpointSize parses the size line of a checkpoint body for origin.
func checkpointSize(text, origin string) (uint64, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] != origin {
		return 0, fmt.Errorf("checkpoint is not for origin %q", origin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || lines[1] != strconv.FormatUint(size, 10) {
		return 0, fmt.Errorf("checkpoint size %q", lines[1])
	}
	if h, err := base64.StdEncoding.DecodeString(lines[2]); err != nil || len(h) != 32 {
		return 0, fmt.Errorf("checkpoint root hash %q", lines[2])
	}
	return size, nil
}

// firstSig returns the signature of verifier on a signed note.
func firstSig(signed []byte, v note.Verifier) (note.Signature, error) {
	parsed, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return note.Signature{}, err
	}
	return parsed.Sigs[0], nil
}

func (c *collector) wakePushers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.push {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pushToMembers starts pushing cosignatures to every member of m this node does not push to
// yet (members that joined by a membership change, with the URL of their policy line).
func (c *collector) pushToMembers(m *verify.Membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range m.Policy.Witnesses {
		if w.Name == c.n.cfg.Name || w.URL == "" {
			continue
		}
		if _, ok := c.push[w.Name]; ok {
			continue
		}
		p, ok := c.n.memberPeer(w.Name)
		if !ok {
			continue
		}
		ch := make(chan struct{}, 1)
		c.push[w.Name] = ch
		go c.pushLoop(p, ch)
		ch <- struct{}{}
	}
}

// pushLoop sends this node's newest cosigned checkpoint to one peer whenever it changes, retrying
// until the peer has it. Pushing is only the fast path; a peer that missed pushes gets the
// newest one later, which is all it needs.
//
// The newest one is sent again every repushInterval even when the peer took it: a peer that
// restarted has lost what it collected in memory, and on a quiet network no newer checkpoint
// would come to bring it the cosignatures it needs to publish.
func (c *collector) pushLoop(peer Peer, wake chan struct{}) {
	var sent uint64
	var sentAt time.Time
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-c.n.stop:
			return
		case <-wake:
		case <-time.After(backoff):
		}
		c.mu.Lock()
		cp := c.latest
		var msg []byte
		if cp != nil && (cp.size != sent || time.Since(sentAt) >= repushInterval) {
			own := &cosigned{size: cp.size, body: cp.body, logSig: cp.logSig, cosigs: map[string]note.Signature{c.n.cfg.Name: cp.cosigs[c.n.cfg.Name]}}
			msg = own.note()
		}
		c.mu.Unlock()
		if msg == nil {
			backoff = time.Second
			continue
		}
		if err := c.n.postNote(peer, msg); err != nil {
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		sent, sentAt, backoff = cp.size, time.Now(), time.Second
	}
}

const repushInterval = 2 * time.Second

func (n *Node) postNote(peer Peer, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peer.URL+"/v1/cosignatures", strings.NewReader(string(msg)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push to %s: %s", peer.Name, resp.Status)
	}
	return nil
}
