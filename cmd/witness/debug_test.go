package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestDebugListener(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := startDebug("", log)
	if err != nil {
		t.Fatalf("no debug_addr: %v", err)
	}
	stop()
	if _, err := startDebug("127.0.0.1:not-a-port", log); err == nil || !strings.Contains(err.Error(), "debug_addr") {
		t.Fatalf("a bad debug_addr: %v, want an error naming debug_addr", err)
	}

	var out strings.Builder
	log = slog.New(slog.NewTextHandler(&out, nil))
	stop, err = startDebug("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, url, ok := strings.Cut(out.String(), "debug=")
	if !ok {
		t.Fatalf("the log does not say where the profiles are: %s", out.String())
	}
	url = strings.TrimSpace(url)
	resp, err := http.Get(url + "heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("GET %sheap: %s\n%.200s", url, resp.Status, body)
	}
}
