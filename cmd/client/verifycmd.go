package main

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

// verifyFlags are the inputs of client verify.
type verifyFlags struct {
	servers     []string
	policy      string
	layout      string
	layoutKeys  []string
	products    []string
	lstrip      []string
	params      []string
	bundle      string
	writeBundle string
	wait        time.Duration
}

// provenEntry is an entry of the log with its proof of inclusion in a cosigned checkpoint.
type provenEntry struct {
	Index    uint64 `json:"index"`
	Leaf     []byte `json:"leaf"`
	Envelope []byte `json:"envelope"`
	// TlogProof is the C2SP tlog-proof of the leaf in the bundle's checkpoint.
	TlogProof string `json:"tlog_proof"`
}

// bundle is what verify --write-bundle stores for offline verification.
type bundle struct {
	Format     string        `json:"format"`
	Layout     provenEntry   `json:"layout"`
	Links      []provenEntry `json:"links"`
	Checkpoint string        `json:"checkpoint"`
}

const bundleFormat = "witnessnet-bundle/v1"

type verifyOutcome struct {
	OK             bool           `json:"ok"`
	Error          string         `json:"error,omitempty"`
	Layout         string         `json:"layout"`
	CheckpointSize uint64         `json:"checkpoint_size"`
	Cosigners      []string       `json:"cosigners"`
	Links          int            `json:"links"`
	Pending        []pendingGroup `json:"pending,omitempty"`
	Report         *intoto.Report `json:"report"`
}

func runVerify(e *env, args []string) error {
	fs := e.flags("verify")
	var f verifyFlags
	fs.StringArrayVar(&f.servers, "server", nil, "base URL of a node; repeat to cross-check several")
	fs.StringVar(&f.policy, "policy", "", "C2SP tlog-policy: which checkpoints to trust")
	fs.StringVar(&f.layout, "layout", "", "sha256:<hex> of the registered layout")
	fs.StringArrayVar(&f.layoutKeys, "layout-key", nil, "public key (PEM) that must have signed the layout; repeatable")
	fs.StringArrayVar(&f.products, "products", nil, "final product file or directory to check; repeatable")
	fs.StringArrayVar(&f.lstrip, "lstrip-paths", nil, "prefix to strip from product names; repeatable")
	fs.StringArrayVar(&f.params, "param", nil, "layout parameter KEY=VALUE; repeatable")
	fs.StringVar(&f.bundle, "bundle", "", "verify offline from this bundle instead of the servers")
	fs.StringVar(&f.writeBundle, "write-bundle", "", "write a bundle for offline verification")
	fs.DurationVar(&f.wait, "wait", 15*time.Second, "how long to wait for a cosigned checkpoint that covers every link")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if len(f.layoutKeys) == 0 || f.policy == "" || (f.bundle == "" && (len(f.servers) == 0 || f.layout == "")) {
		return usagef("--policy, --layout-key and either --bundle or --server with --layout are required")
	}
	policy, err := loadPolicy(f.policy)
	if err != nil {
		return err
	}
	var b *bundle
	var out verifyOutcome
	if f.bundle != "" {
		b, err = readBundle(f.bundle)
	} else {
		b, out.Pending, err = fetchBundle(policy, &f)
	}
	if err != nil {
		return err
	}
	if f.writeBundle != "" {
		data, _ := json.MarshalIndent(b, "", "  ")
		if err := os.WriteFile(f.writeBundle, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	err = verifyBundle(policy, b, &f, &out)
	if err != nil {
		out.Error = err.Error()
		e.result(out, "FAIL: "+err.Error()+"\n"+describeReport(&out))
		return fmt.Errorf("%w: %v", errCheck, err)
	}
	out.OK = true
	e.result(out, "PASS: the supply chain verifies against the log\n"+describeReport(&out))
	return nil
}

// fetchBundle gathers the layout and its links from the log, with inclusion proofs against a
// checkpoint that satisfies the policy and covers all of them.
func fetchBundle(policy *verify.Policy, f *verifyFlags) (*bundle, []pendingGroup, error) {
	deadline := time.Now().Add(f.wait)
	// Read from the server that knows the most entries, and wait until a cosigned checkpoint
	// covers everything it knew when verification started.
	a, known, err := mostAdvanced(f.servers)
	if err != nil {
		return nil, nil, err
	}
	for {
		cps, err := fetchCheckpoints(policy, f.servers)
		if err != nil {
			return nil, nil, err
		}
		best := cps[slices.IndexFunc(cps, func(s served) bool { return s.api.base == a.base })]
		lay, err := fetchEntry(a, f.layout)
		if err != nil {
			return nil, nil, fmt.Errorf("layout %s: %w", f.layout, err)
		}
		indexes, err := searchAll(a, "layout="+f.layout+"&type=link")
		if err != nil {
			return nil, nil, err
		}
		// Prove against one note fetched now (it is at least as new as the cross-checked one).
		note, err := a.checkpoint()
		if err != nil {
			return nil, nil, err
		}
		cp, _, err := policy.VerifyCheckpoint(note)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: checkpoint: %w", a.base, err)
		}
		if err := checkConsistent(a, best.cp, cp); err != nil {
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
				return nil, nil, fmt.Errorf("%w: entry %d is not yet in a cosigned checkpoint (size %d)", errCheck, top, cp.Size)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		b := &bundle{Format: bundleFormat, Checkpoint: string(note)}
		if b.Layout, err = prove(a, lay, cp.Size, note); err != nil {
			return nil, nil, err
		}
		for _, i := range indexes {
			en, err := fetchEntry(a, fmt.Sprint(i))
			if err != nil {
				return nil, nil, err
			}
			p, err := prove(a, en, cp.Size, note)
			if err != nil {
				return nil, nil, err
			}
			b.Links = append(b.Links, p)
		}
		var pend struct {
			Pending []pendingGroup `json:"pending"`
		}
		_ = a.getJSON("/v1/pending?layout="+f.layout, &pend)
		return b, pend.Pending, nil
	}
}

// mostAdvanced returns the server whose log holds the most entries, and that number.
func mostAdvanced(servers []string) (*api, uint64, error) {
	var best *api
	var size uint64
	for _, s := range servers {
		a := newAPI(s)
		var st struct {
			LogSize uint64 `json:"log_size"`
		}
		if err := a.getJSON("/v1/status", &st); err != nil {
			return nil, 0, err
		}
		if best == nil || st.LogSize > size {
			best, size = a, st.LogSize
		}
	}
	return best, size, nil
}

func searchAll(a *api, query string) ([]uint64, error) {
	var out []uint64
	from := uint64(0)
	for {
		var page struct {
			Indices []uint64 `json:"indices"`
			Next    *uint64  `json:"next"`
		}
		if err := a.getJSON(fmt.Sprintf("/v1/search?%s&from=%d", query, from), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Indices...)
		if page.Next == nil {
			return out, nil
		}
		from = *page.Next
	}
}

// prove fetches an entry's inclusion proof and renders it as a C2SP tlog-proof.
func prove(a *api, en *entry, size uint64, note []byte) (provenEntry, error) {
	var p inclusionProof
	if err := a.getJSON(fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", en.Index, size), &p); err != nil {
		return provenEntry{}, err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "c2sp.org/tlog-proof@v1\nindex %d\n", en.Index)
	for _, h := range p.Hashes {
		s.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	s.WriteString("\n")
	s.Write(note)
	return provenEntry{Index: en.Index, Leaf: en.Leaf, Envelope: en.Envelope, TlogProof: s.String()}, nil
}

func readBundle(path string) (*bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if b.Format != bundleFormat {
		return nil, fmt.Errorf("bundle %s: format %q, want %q", path, b.Format, bundleFormat)
	}
	return &b, nil
}

// verifyBundle checks everything offline: the checkpoint against the policy, each entry's proof
// and leaf, then the in-toto verification over the proven documents only.
func verifyBundle(policy *verify.Policy, b *bundle, f *verifyFlags, out *verifyOutcome) error {
	cp, rep, err := policy.VerifyCheckpoint([]byte(b.Checkpoint))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	out.CheckpointSize, out.Cosigners = cp.Size, slices.Sorted(slices.Values(rep.Cosigners))
	layoutDoc, layoutID, err := checkProven(b.Layout, cp, b.Checkpoint)
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	out.Layout = layoutID
	if f.layout != "" && f.layout != layoutID {
		return fmt.Errorf("the bundle holds layout %s, not %s", layoutID, f.layout)
	}
	in := intoto.VerifyInput{Now: time.Now(), Params: map[string]string{}}
	if in.Layout, err = intoto.ParseMetadata(layoutDoc); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	for _, p := range b.Links {
		doc, _, err := checkProven(p, cp, b.Checkpoint)
		if err != nil {
			return fmt.Errorf("link at %d: %w", p.Index, err)
		}
		leaf, _ := ledger.ParseLeaf(p.Leaf)
		if leaf.Layout != layoutID {
			return fmt.Errorf("link at %d belongs to layout %s", p.Index, leaf.Layout)
		}
		m, err := intoto.ParseMetadata(doc)
		if err != nil {
			return fmt.Errorf("link at %d: %w", p.Index, err)
		}
		in.Links = append(in.Links, m)
	}
	out.Links = len(in.Links)
	for _, path := range f.layoutKeys {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		k, err := intoto.ParseKeyPEM(data, "")
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		in.LayoutKeys = append(in.LayoutKeys, k)
	}
	for _, kv := range f.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--param %q: want KEY=VALUE", kv)
		}
		in.Params[k] = v
	}
	if len(f.products) > 0 {
		if in.Products, err = recordArtifacts(f.products, recordOptions{lstrip: f.lstrip}); err != nil {
			return err
		}
	}
	out.Report, err = intoto.Verify(in)
	return err
}

// checkProven checks one entry of a bundle: its tlog-proof is for its leaf, against the
// bundle's checkpoint, and the leaf carries (or commits to) the envelope. It returns the
// envelope and its identity.
func checkProven(p provenEntry, cp *verify.Checkpoint, note string) ([]byte, string, error) {
	index, hashes, proofNote, err := parseTlogProof(p.TlogProof)
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

// parseTlogProof reads a C2SP tlog-proof: header, optional extra, index, hashes, blank line,
// checkpoint.
func parseTlogProof(text string) (uint64, [][]byte, string, error) {
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

func describeReport(o *verifyOutcome) string {
	var b strings.Builder
	if o.Layout != "" {
		fmt.Fprintf(&b, "layout %s, %d link(s) from the log\n", o.Layout, o.Links)
	}
	if o.CheckpointSize > 0 {
		fmt.Fprintf(&b, "checkpoint size %d cosigned by %s\n", o.CheckpointSize, strings.Join(o.Cosigners, ", "))
	}
	if o.Report != nil {
		for _, s := range o.Report.Steps {
			fmt.Fprintf(&b, "  step %s: %d of %d functionaries counted", s.Name, len(s.Counted), s.Threshold)
			for _, d := range s.Dissent {
				fmt.Fprintf(&b, "; dissent by %s", shortIDs(d.Functionaries))
			}
			b.WriteString("\n")
		}
		for _, w := range o.Report.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", w)
		}
	}
	for _, p := range o.Pending {
		fmt.Fprintf(&b, "  pending (not in the log): step %s, %d of %d signatures, payload %s\n", p.Step, p.Signatures, p.Threshold, p.Payload)
	}
	return b.String()
}

func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))]
	}
	return strings.Join(out, ", ")
}
