package compose

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Policy is what the suite needs of a C2SP tlog-policy file: the log keys and the witnesses.
type Policy struct {
	LogKeys   []string          // verifier keys of the log signatures
	Witnesses map[string]string // witness name -> base URL (may be empty)
}

// ParsePolicy reads the lines the suite uses and ignores the rest.
func ParsePolicy(b []byte) (*Policy, error) {
	p := &Policy{Witnesses: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "log":
			if len(f) < 2 {
				return nil, fmt.Errorf("policy: %q: want log <vkey> [url]", sc.Text())
			}
			p.LogKeys = append(p.LogKeys, f[1])
		case "witness":
			if len(f) < 3 {
				return nil, fmt.Errorf("policy: %q: want witness <name> <vkey> [url]", sc.Text())
			}
			url := ""
			if len(f) > 3 {
				url = f[3]
			}
			p.Witnesses[f[1]] = url
		}
	}
	if len(p.LogKeys) == 0 {
		return nil, errors.New("policy names no log key")
	}
	return p, sc.Err()
}

// Checkpoint is one checkpoint a node published.
type Checkpoint struct {
	Node   string
	Origin string
	Size   uint64
	Root   []byte
	Signer string // the key name of the verified log signature
	Cosigs int    // signatures by keys named like a policy witness (not verified here)
	Seen   int64  // when the suite first saw it, on the recorder's clock
	Text   string
}

// ParseCheckpoint opens a C2SP checkpoint note: at least one log signature MUST verify under the
// policy's log keys.
func ParseCheckpoint(text []byte, pol *Policy) (*Checkpoint, error) {
	var vs []note.Verifier
	for _, k := range pol.LogKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("policy log key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(text, note.VerifierList(vs...))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return nil, fmt.Errorf("checkpoint body has %d lines", len(lines))
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("checkpoint size %q: %w", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("checkpoint root %q: not 32 bytes of base64", lines[2])
	}
	cp := &Checkpoint{Origin: lines[0], Size: size, Root: root, Signer: n.Sigs[0].Name, Text: string(text)}
	for _, s := range n.UnverifiedSigs {
		if _, ok := pol.Witnesses[s.Name]; ok {
			cp.Cosigs++
		}
	}
	return cp, nil
}

// ConsistencyProver fetches a consistency proof between two tree sizes.
type ConsistencyProver func(old, size uint64) ([][]byte, error)

// CheckConsistency checks each pair of successive distinct published sizes with a consistency
// proof from prove. Every published checkpoint is then consistent with every other: successive
// pairs chain, and CheckCheckpoints already holds each root to the one converged log.
func CheckConsistency(cps []Checkpoint, prove ConsistencyProver) (pairs int, errs []error) {
	bySize := map[uint64][]byte{}
	for _, c := range cps {
		if r, ok := bySize[c.Size]; ok && !bytes.Equal(r, c.Root) {
			errs = append(errs, fmt.Errorf("fork: two roots at size %d (%x, %x)", c.Size, r, c.Root))
		}
		bySize[c.Size] = c.Root
	}
	sizes := make([]uint64, 0, len(bySize))
	for s := range bySize {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for i := 1; i < len(sizes); i++ {
		old, size := sizes[i-1], sizes[i]
		if old == 0 {
			continue
		}
		p, err := prove(old, size)
		if err == nil {
			err = proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, bySize[old], bySize[size])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("consistency %d -> %d: %w", old, size, err))
		}
		pairs++
	}
	return pairs, errs
}
