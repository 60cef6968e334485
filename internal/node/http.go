package node

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// routes builds the node's HTTP API.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern, route string, fn http.HandlerFunc) {
		mux.HandleFunc(pattern, n.metrics.instrument(route, fn))
	}
	h("POST /v1/entries", "submit", n.handleSubmit)
	h("POST /v1/entries/batch", "submit_batch", n.handleSubmitBatch)
	h("GET /v1/entries/{id}", "entry", n.handleEntry)
	h("GET /v1/proof/inclusion", "inclusion", n.handleInclusion)
	h("GET /v1/proof/consistency", "consistency", n.handleConsistency)
	h("GET /v1/status", "status", n.handleStatus)
	h("GET /v1/search", "search", n.handleSearch)
	h("GET /v1/evidence", "evidence", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"evidence": n.collector.Evidences()})
	})
	h("GET /v1/gossip", "gossip", n.handleGossip)
	h("GET /v1/membership", "membership", n.handleMembership)
	h("POST /v1/membership", "membership_propose", n.handleProposeMembership)
	h("GET /v1/pending", "pending", n.handlePending)
	h("GET /v1/pending/{id}", "pending_group", n.handlePendingGroup)
	h("POST /v1/cosignatures", "cosignatures", n.handleCosignatures)
	h("POST /v1/internal/propose", "forward", n.handleForward)
	h("POST /v1/internal/submit", "relay", n.handleRelay)
	h("GET /checkpoint", "checkpoint", n.handleCheckpoint)
	h("POST /add-checkpoint", "add_checkpoint", n.addCheckpointHandler().ServeHTTP)
	h("GET /tile/", "tile", n.handleTile)
	h("GET /{$}", "status_page", n.handleStatusPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", n.metrics.handler())
	return mux
}

// entryResponse is GET /v1/entries/{id}.
type entryResponse struct {
	Index      uint64          `json:"index"`
	Entry      string          `json:"entry"`
	Leaf       string          `json:"leaf"`
	Envelope   json.RawMessage `json:"envelope,omitempty"`
	Layout     string          `json:"layout,omitempty"`
	PublicKeys []string        `json:"public_keys,omitempty"`
}

func (n *Node) handleEntry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var idx uint64
	if strings.HasPrefix(id, "sha256:") {
		ident, err := ledger.ParseIdentity(id)
		if err != nil {
			n.writeError(w, r, errorf(http.StatusBadRequest, "malformed_identity", "%v", err))
			return
		}
		if idx, err = n.ledger.Lookup(ident); err != nil {
			n.writeError(w, r, notFound(err))
			return
		}
	} else {
		var err error
		if idx, err = strconv.ParseUint(id, 10, 64); err != nil {
			n.writeError(w, r, errorf(http.StatusBadRequest, "malformed_index", "entry %q: want an index or sha256:<hex>", id))
			return
		}
	}
	e, err := n.ledger.Entry(r.Context(), idx)
	if err != nil {
		n.writeError(w, r, notFound(err))
		return
	}
	writeEntry(w, entryResponse{
		Index: idx, Entry: ledger.IdentityOf(e.Envelope).String(), Leaf: base64.StdEncoding.EncodeToString(e.Leaf),
		Envelope: e.Envelope, Layout: e.Layout, PublicKeys: e.PublicKeys,
	})
}

// writeEntry writes an entry with its envelope embedded byte for byte: encoding/json would
// compact and HTML-escape a json.RawMessage, and the envelope's identity is the hash of its
// exact bytes.
func writeEntry(w http.ResponseWriter, e entryResponse) {
	env := e.Envelope
	e.Envelope = nil
	head, err := json.Marshal(e)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head[:len(head)-1])
	_, _ = w.Write([]byte(`,"envelope":`))
	_, _ = w.Write(env)
	_, _ = w.Write([]byte("}\n"))
}

// notFound maps ledger.ErrNotFound to 404 and passes anything else through as internal.
func notFound(err error) error {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, ledger.ErrTreeMismatch):
		// The node's storage is damaged: say so instead of serving bytes it cannot vouch for.
		return errorf(http.StatusInternalServerError, "damaged_storage", "%v", err)
	}
	return err
}

func queryUint(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "malformed_query", "query parameter %s=%q: want a non-negative integer", name, s)
	}
	return v, nil
}

func b64s(hashes [][]byte) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

func (n *Node) handleInclusion(w http.ResponseWriter, r *http.Request) {
	idx, err := queryUint(r, "index")
	if err == nil {
		var size uint64
		if size, err = queryUint(r, "size"); err == nil {
			var proof [][]byte
			if proof, err = n.ledger.InclusionProof(r.Context(), idx, size); err == nil {
				leaves, lerr := n.ledger.Leaves(r.Context(), idx, 1)
				if lerr != nil || len(leaves) != 1 {
					n.writeError(w, r, lerr)
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"index": idx, "tree_size": size,
					"leaf_hash": base64.StdEncoding.EncodeToString(leaves[0].MerkleLeafHash), "hashes": b64s(proof)})
				return
			}
		}
	}
	n.writeError(w, r, notFound(err))
}

func (n *Node) handleConsistency(w http.ResponseWriter, r *http.Request) {
	old, err := queryUint(r, "old")
	if err == nil {
		var size uint64
		if size, err = queryUint(r, "size"); err == nil {
			var proof [][]byte
			if proof, err = n.ledger.ConsistencyProof(r.Context(), old, size); err == nil {
				writeJSON(w, http.StatusOK, map[string]any{"old_size": old, "tree_size": size, "hashes": b64s(proof)})
				return
			}
		}
	}
	n.writeError(w, r, notFound(err))
}

func (n *Node) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, _ := n.collector.published()
	if cp == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no checkpoint has a quorum of cosignatures yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(cp)
}

func (n *Node) handleCosignatures(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		n.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err))
		return
	}
	if err := n.collector.addPeerNote(body); err != nil {
		n.writeError(w, r, errorf(http.StatusBadRequest, "bad_cosignature", "%v", err))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (n *Node) handleTile(w http.ResponseWriter, r *http.Request) {
	t, err := parseTilePath(strings.TrimPrefix(r.URL.Path, "/tile/"))
	if err != nil {
		n.writeError(w, r, errorf(http.StatusNotFound, "not_found", "%v", err))
		return
	}
	var data []byte
	if t.Entries {
		data, err = n.ledger.EntryBundle(r.Context(), t.Index, t.Width)
	} else {
		data, err = n.ledger.HashTile(r.Context(), t.Level, t.Index, t.Width)
	}
	if err != nil {
		n.writeError(w, r, notFound(err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.Width == ledger.TileWidth {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	_, _ = w.Write(data)
}

// Status is GET /v1/status.
type Status struct {
	Name           string `json:"name"`
	Origin         string `json:"origin"`
	RaftState      string `json:"raft_state"`
	Leader         string `json:"leader"`
	Term           uint64 `json:"term"`
	AppliedIndex   uint64 `json:"applied_index"`
	LogSize        uint64 `json:"log_size"`
	TreeSize       uint64 `json:"tree_size"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	Time           string `json:"time"`
}

func (n *Node) status() Status {
	_, cpSize := n.collector.published()
	st := n.raft.Stats()
	return Status{
		Name: n.cfg.Name, Origin: n.cfg.Origin, RaftState: st.State, Leader: n.raft.Leader(), Term: st.Term,
		AppliedIndex: n.ledger.AppliedIndex(), LogSize: n.ledger.Size(), TreeSize: n.ledger.TreeSize(),
		CheckpointSize: cpSize, Time: time.Now().UTC().Format(time.RFC3339Nano),
	}
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.status())
}
