package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
)

// A member rebuilt with witness rebuild (replicated state set aside, witness state kept) is
// caught up by its peers instead of bootstrapping a network of its own, and cosigns again.
func TestRebuildMemberFromPeers(t *testing.T) {
	nw, _ := localnettest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keys := []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	down := -1
	submit := func(i int) {
		t.Helper()
		env, err := client.SignDocument(fmt.Appendf(nil, `{"rebuild":%d}`, i), "dsse", "application/json", priv, "")
		if err != nil {
			t.Fatal(err)
		}
		for attempt := 0; ; attempt++ {
			target := (i + attempt) % 3
			if target == down {
				target = (target + 1) % 3
			}
			status, _, err := client.Submit(client.NewAPI(nw.URLs()[target]), env, "", keys)
			if err == nil && (status == http.StatusCreated || status == http.StatusOK) {
				return
			}
			if attempt > 100 {
				t.Fatalf("submit %d: %d %v", i, status, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range 30 {
		submit(i)
	}
	leader, _ := nw.Leader(ctx)
	victim := (leader + 1) % 3
	down = victim
	if err := nw.Stop(ctx, victim); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := rebuildCmd([]string{"--data-dir", nw.DataDir(victim)}, &out, &errb); code != 0 {
		t.Fatalf("rebuild: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "moved") {
		t.Fatalf("rebuild moved nothing: %s", out.String())
	}
	if _, err := os.Stat(filepath.Join(nw.DataDir(victim), "state.db")); err == nil {
		t.Fatal("state.db is still in place")
	}
	for i := 30; i < 40; i++ {
		submit(i)
	}
	if err := nw.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := nw.Node(victim).Status()
		if st.TreeSize >= 40 && st.CheckpointSize >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebuilt member: %+v", st)
		}
	}
	// It is one of the original voters again, not a network of its own.
	if st := nw.Node(victim).Status(); st.Leader == "" || st.LogSize != nw.Node(leader).Status().LogSize {
		t.Fatalf("rebuilt %+v, leader %+v", st, nw.Node(leader).Status())
	}
	// Without witness.db there is nothing to rebuild: that is a new member.
	if code := rebuildCmd([]string{"--data-dir", t.TempDir()}, &out, &errb); code != 1 {
		t.Fatalf("rebuild without witness.db: exit %d", code)
	}
}
