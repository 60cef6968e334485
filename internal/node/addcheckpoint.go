package node

import (
	"errors"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/witness"
)

// tlogWitness is the part of the node's witness that witnesses other logs (C2SP tlog-witness).
type tlogWitness interface {
	Handler(logs witness.LogKeys, refused func(status int, err error)) http.Handler
}

// addCheckpointHandler serves POST /add-checkpoint for the configured witnessed logs. Every
// origin it was not configured with, the network's own included, is 404: the node's cosignature
// on its own log comes only from the root it computed itself. A witnessed log that shows this
// node two inconsistent checkpoints is refused (422) and raises an alarm line and a metric.
func (n *Node) addCheckpointHandler() http.Handler {
	tw, ok := n.witness.(tlogWitness)
	if !ok {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "this node witnesses no other log", http.StatusNotFound)
		})
	}
	logs := func(origin string) ([]note.Verifier, bool) {
		if origin == n.cfg.Origin {
			return nil, false
		}
		v, ok := n.cfg.WitnessedLogs[origin]
		return v, ok
	}
	return tw.Handler(logs, func(status int, err error) {
		n.metrics.foreignRefused.WithLabelValues(strconv.Itoa(status)).Inc()
		if errors.Is(err, witness.ErrInconsistent) {
			n.log.Error("ALARM: a witnessed log presented a checkpoint inconsistent with one this node cosigned", "err", err)
			return
		}
		n.log.Debug("add-checkpoint refused", "status", status, "err", err)
	})
}
