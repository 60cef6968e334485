package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

// healthcheckCmd asks a node's /healthz and exits 0 on 200, 1 otherwise. It exists because the
// container image is FROM scratch: no shell, no curl, so the image's healthcheck needs a binary.
//
//	witness healthcheck [URL]    default http://127.0.0.1:8080/healthz
func healthcheckCmd(args []string) int {
	url := "http://127.0.0.1:8080/healthz"
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Println("usage: witness healthcheck [URL]   (default " + url + ")")
		return 0
	case len(args) == 1:
		url = args[0]
	case len(args) > 1:
		fmt.Fprintln(os.Stderr, "usage: witness healthcheck [URL]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "witness healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "witness healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "witness healthcheck: %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}
