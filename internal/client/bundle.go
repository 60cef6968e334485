package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// ProvenEntry is an entry of the log with its proof of inclusion in a cosigned checkpoint.
type ProvenEntry struct {
	Index    uint64 `json:"index"`
	Leaf     []byte `json:"leaf"`
	Envelope []byte `json:"envelope"`
	// TlogProof is the C2SP tlog-proof of the leaf in the bundle's checkpoint.
	TlogProof string `json:"tlog_proof"`
}

// Bundle is what verify --write-bundle stores for offline verification: the layout and its
// links, each with a C2SP tlog-proof against one checkpoint.
type Bundle struct {
	Format     string        `json:"format"`
	Layout     ProvenEntry   `json:"layout"`
	Links      []ProvenEntry `json:"links"`
	Checkpoint string        `json:"checkpoint"`
}

// BundleFormat names the bundle format.
const BundleFormat = "witnessnet-bundle/v1"

// Outcome is what a verification found.
type Outcome struct {
	OK             bool           `json:"ok"`
	Error          string         `json:"error,omitempty"`
	Layout         string         `json:"layout"`
	CheckpointSize uint64         `json:"checkpoint_size"`
	Cosigners      []string       `json:"cosigners"`
	Links          int            `json:"links"`
	Pending        []PendingGroup `json:"pending,omitempty"`
	Report         *intoto.Report `json:"report"`
}

// MostAdvanced returns the server whose log holds the most entries, and that number.
func MostAdvanced(servers []string) (*API, uint64, error) {
	var best *API
	var size uint64
	for _, s := range servers {
		a := NewAPI(s)
		var st struct {
			LogSize uint64 `json:"log_size"`
		}
		if err := a.GetJSON("/v1/status", &st); err != nil {
			return nil, 0, err
		}
		if best == nil || st.LogSize > size {
			best, size = a, st.LogSize
		}
	}
	return best, size, nil
}

// SearchAll pages through GET /v1/search.
func SearchAll(a *API, query string) ([]uint64, error) {
	var out []uint64
	from := uint64(0)
	for {
		var page struct {
			Indices []uint64 `json:"indices"`
			Next    *uint64  `json:"next"`
		}
		if err := a.GetJSON(fmt.Sprintf("/v1/search?%s&from=%d", query, from), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Indices...)
		if page.Next == nil {
			return out, nil
		}
		from = *page.Next
	}
}

// Prove fetches an entry's inclusion proof and renders it as a C2SP tlog-proof.
func Prove(a *API, en *Entry, size uint64, note []byte) (ProvenEntry, error) {
	var p InclusionProof
	if err := a.GetJSON(fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", en.Index, size), &p); err != nil {
		return ProvenEntry{}, err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "c2sp.org/tlog-proof@v1\nindex %d\n", en.Index)
	for _, h := range p.Hashes {
		s.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	s.WriteString("\n")
	s.Write(note)
	return ProvenEntry{Index: en.Index, Leaf: en.Leaf, Envelope: en.Envelope, TlogProof: s.String()}, nil
}

// ReadBundle reads a bundle file.
func ReadBundle(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("bundle %s: format %q, want %q", path, b.Format, BundleFormat)
	}
	return &b, nil
}

// CheckProven checks one entry of a bundle: its tlog-proof is for its leaf, against the
// bundle's checkpoint, and the leaf carries (or commits to) the envelope. It returns the
// envelope and its identity.
func CheckProven(p ProvenEntry, cp *verify.Checkpoint, note string) ([]byte, string, error) {
	index, hashes, proofNote, err := ParseTlogProof(p.TlogProof)
	if err != nil {
		return nil, "", err
	}
	if index != p.Index || proofNote != note {
		return nil, "", errors.New("the proof is for another index or checkpoint")
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, rfc6962.DefaultHasher.HashLeaf(p.Leaf), hashes, cp.Root); err != nil {
		return nil, "", fmt.Errorf("inclusion: %w", err)
	}
	leaf, err := ledger.ParseLeaf(p.Leaf)
	if err != nil {
		return nil, "", err
	}
	id := ledger.IdentityOf(p.Envelope)
	if leaf.Envelope != nil && string(leaf.Envelope) != string(p.Envelope) || leaf.Envelope == nil && "sha256:"+leaf.EnvelopeSHA256 != id.String() {
		return nil, "", errors.New("the envelope is not the one the leaf commits to")
	}
	return p.Envelope, id.String(), nil
}

// ParseTlogProof reads a C2SP tlog-proof: header, optional extra, index, hashes, blank line,
// checkpoint.
func ParseTlogProof(text string) (uint64, [][]byte, string, error) {
	head, note, ok := strings.Cut(text, "\n\n")
	if !ok {
		return 0, nil, "", errors.New("tlog-proof: no checkpoint")
	}
	lines := strings.Split(head, "\n")
	if len(lines) < 2 || lines[0] != "c2sp.org/tlog-proof@v1" {
		return 0, nil, "", errors.New("tlog-proof: bad header")
	}
	lines = lines[1:]
	if strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	var index uint64
	if len(lines) == 0 {
		return 0, nil, "", errors.New("tlog-proof: no index")
	}
	if _, err := fmt.Sscanf(lines[0], "index %d", &index); err != nil {
		return 0, nil, "", fmt.Errorf("tlog-proof: index: %v", err)
	}
	var hashes [][]byte
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != 32 {
			return 0, nil, "", errors.New("tlog-proof: bad hash")
		}
		hashes = append(hashes, h)
	}
	return index, hashes, note, nil
}

// FetchBundle gathers a layout and its links from the log, with inclusion proofs against a
// checkpoint that satisfies the policy and covers all of them. It reads from the server that
// knows the most entries and waits (up to wait) until a cosigned checkpoint covers everything
// that server knew when it started. It also returns the layout's open co-signing groups.
func FetchBundle(policy *verify.Policy, servers []string, layout string, wait time.Duration) (*Bundle, []PendingGroup, error) {
	deadline := time.Now().Add(wait)
	a, known, err := MostAdvanced(servers)
	if err != nil {
		return nil, nil, err
	}
	for {
		cps, err := FetchCheckpoints(policy, servers)
		if err != nil {
			return nil, nil, err
		}
		best := cps[slices.IndexFunc(cps, func(s Served) bool { return s.Server.base == a.base })]
		lay, err := FetchEntry(a, layout)
		if err != nil {
			return nil, nil, fmt.Errorf("layout %s: %w", layout, err)
		}
		indexes, err := SearchAll(a, "layout="+layout+"&type=link")
		if err != nil {
			return nil, nil, err
		}
		// Prove against one note fetched now (at least as new as the cross-checked one).
		note, err := a.Checkpoint()
		if err != nil {
			return nil, nil, err
		}
		cp, _, err := policy.VerifyCheckpoint(note)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: checkpoint: %w", a.base, err)
		}
		if err := CheckConsistent(a, best.Checkpoint, cp); err != nil {
			return nil, nil, err
		}
		top := lay.Index
		if known > 0 {
			top = max(top, known-1)
		}
		for _, i := range indexes {
			top = max(top, i)
		}
		if top >= cp.Size {
			if time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("%w: entry %d is not yet in a cosigned checkpoint (size %d)", ErrCheck, top, cp.Size)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		b := &Bundle{Format: BundleFormat, Checkpoint: string(note)}
		if b.Layout, err = Prove(a, lay, cp.Size, note); err != nil {
			return nil, nil, err
		}
		for _, i := range indexes {
			en, err := FetchEntry(a, fmt.Sprint(i))
			if err != nil {
				return nil, nil, err
			}
			p, err := Prove(a, en, cp.Size, note)
			if err != nil {
				return nil, nil, err
			}
			b.Links = append(b.Links, p)
		}
		var pend struct {
			Pending []PendingGroup `json:"pending"`
		}
		_ = a.GetJSON("/v1/pending?layout="+layout, &pend)
		return b, pend.Pending, nil
	}
}

// VerifyOptions are a verifier's own inputs: which layout it expects, whose signatures must be on
// it, the final products it holds, and the layout's parameters.
type VerifyOptions struct {
	Layout     string // sha256:<hex>; empty accepts the bundle's
	LayoutKeys []*intoto.Key
	Products   map[string]intoto.DigestSet
	Params     map[string]string
	Now        time.Time
}

// VerifyBundle checks everything offline: the checkpoint against the policy, each entry's proof
// and leaf, then the in-toto verification over the proven documents only. The outcome is filled
// as far as verification got.
func VerifyBundle(policy *verify.Policy, b *Bundle, opts VerifyOptions) (*Outcome, error) {
	out := &Outcome{}
	cp, rep, err := policy.VerifyCheckpoint([]byte(b.Checkpoint))
	if err != nil {
		return out, fmt.Errorf("checkpoint: %w", err)
	}
	out.CheckpointSize, out.Cosigners = cp.Size, slices.Sorted(slices.Values(rep.Cosigners))
	layoutDoc, layoutID, err := CheckProven(b.Layout, cp, b.Checkpoint)
	if err != nil {
		return out, fmt.Errorf("layout: %w", err)
	}
	out.Layout = layoutID
	if opts.Layout != "" && opts.Layout != layoutID {
		return out, fmt.Errorf("the bundle holds layout %s, not %s", layoutID, opts.Layout)
	}
	in := intoto.VerifyInput{Now: opts.Now, Params: opts.Params, LayoutKeys: opts.LayoutKeys, Products: opts.Products}
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if in.Layout, err = intoto.ParseMetadata(layoutDoc); err != nil {
		return out, fmt.Errorf("layout: %w", err)
	}
	for _, p := range b.Links {
		doc, _, err := CheckProven(p, cp, b.Checkpoint)
		if err != nil {
			return out, fmt.Errorf("link at %d: %w", p.Index, err)
		}
		leaf, _ := ledger.ParseLeaf(p.Leaf)
		if leaf.Layout != layoutID {
			return out, fmt.Errorf("link at %d belongs to layout %s", p.Index, leaf.Layout)
		}
		m, err := intoto.ParseMetadata(doc)
		if err != nil {
			return out, fmt.Errorf("link at %d: %w", p.Index, err)
		}
		in.Links = append(in.Links, m)
	}
	out.Links = len(in.Links)
	out.Report, err = intoto.Verify(in)
	if err == nil {
		out.OK = true
	}
	return out, err
}
