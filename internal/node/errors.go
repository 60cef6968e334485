package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is the one error type at the HTTP edge: a status code, a machine-readable code and a
// human-readable message, answered as JSON `{"error": code, "message": message}`.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sent as Retry-After for 429 and 503
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// asError is the *Error to answer err with. An error that is not an *Error is an internal
// failure: it is logged and answered as a 500 without its text.
func (n *Node) asError(r *http.Request, err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		n.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	return e
}

// writeError answers err as JSON (see asError).
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := n.asError(r, err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(e.RetryAfter.Round(time.Second)/time.Second))))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "message": e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
