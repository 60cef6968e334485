package witness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

var bucketState = []byte("witness/state")

// Witness cosigns checkpoints (C2SP cosignature/v1) and remembers, per origin, the last one it
// cosigned, in its own bbolt file. See doc.go for the guarantee.
type Witness struct {
	db     *bbolt.DB
	signer note.Signer
}

// Open opens (creating) the witness state at path, signing with skey (a signed-note Ed25519
// private key; cosignatures are cosignature/v1 under the key's name).
func Open(path, skey string) (*Witness, error) {
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketState)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Witness{db: db, signer: signer}, nil
}

// Close closes the state file.
func (w *Witness) Close() error { return w.db.Close() }

// Name is the witness key's name.
func (w *Witness) Name() string { return w.signer.Name() }

// Last returns the last cosigned state for origin, or nil.
func (w *Witness) Last(origin string) (*State, error) {
	var st *State
	err := w.db.View(func(tx *bbolt.Tx) error {
		var err error
		st, err = decodeState(tx.Bucket(bucketState).Get([]byte(origin)))
		return err
	})
	return st, err
}

// CosignOwn cosigns a checkpoint of the node's own log. proof supplies the consistency proof from
// a given older size, computed from the node's own tree. The new state is committed to disk before
// the cosignature is made: a cosignature MUST NOT leave the witness unless the state that forbids
// cosigning a conflicting checkpoint is durable.
func (w *Witness) CosignOwn(ctx context.Context, signedCheckpoint []byte, proof func(oldSize uint64) ([][]byte, error)) (note.Signature, error) {
	n, err := note.Open(signedCheckpoint, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if err != nil && !errors.As(err, &unverified) {
		return note.Signature{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if n == nil {
		n = unverified.Note
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return note.Signature{}, err
	}
	err = w.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketState)
		last, err := decodeState(b.Get([]byte(cp.Origin)))
		if err != nil {
			return err
		}
		var p [][]byte
		if last != nil && last.Size > 0 && cp.Size > last.Size {
			if p, err = proof(last.Size); err != nil {
				return fmt.Errorf("consistency proof from %d: %w", last.Size, err)
			}
		}
		next, err := Decide(last, cp, p)
		if err != nil {
			return err
		}
		return b.Put([]byte(cp.Origin), encodeState(next))
	})
	if err != nil {
		return note.Signature{}, err
	}
	return w.cosign(n.Text)
}

// cosign signs a checkpoint body and returns the cosignature line.
func (w *Witness) cosign(text string) (note.Signature, error) {
	signed, err := note.Sign(&note.Note{Text: text}, w.signer)
	if err != nil {
		return note.Signature{}, err
	}
	// The signed note is the text, an empty line, and the one signature line just made.
	line := strings.TrimSuffix(string(signed[len(text)+1:]), "\n")
	name, b64, ok := strings.Cut(strings.TrimPrefix(line, "\u2014 "), " ")
	if !ok || strings.Contains(b64, "\n") {
		return note.Signature{}, fmt.Errorf("unexpected signature line %q", line)
	}
	return note.Signature{Name: name, Hash: w.signer.KeyHash(), Base64: b64}, nil
}

func encodeState(s State) []byte {
	return append(binary.BigEndian.AppendUint64(nil, s.Size), s.Root...)
}

func decodeState(b []byte) (*State, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) != 8+32 {
		return nil, fmt.Errorf("witness state record of %d bytes", len(b))
	}
	return &State{Size: binary.BigEndian.Uint64(b), Root: append([]byte(nil), b[8:]...)}, nil
}
