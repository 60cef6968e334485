package localnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/verify"
)

func TestNetworkServesQuorumCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nw, err := Start(ctx, Config{Nodes: 4, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	if _, err := nw.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	payload := []byte(`{"hello":"witnessnet"}`)
	sig := ed25519.Sign(priv, verify.PAE("application/json", payload))
	env := fmt.Sprintf(`{"payloadType":"application/json","payload":%q,"signatures":[{"keyid":"","sig":%q}]}`,
		base64.StdEncoding.EncodeToString(payload), base64.StdEncoding.EncodeToString(sig))
	pemKey := pemPublic(t, pub)
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{pemKey}})
	resp, err := http.Post(nw.URLs()[3]+"/v1/entries", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.StatusCode, out)
	}
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range nw.URLs() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			cp, err := fetch(u + "/checkpoint")
			if err == nil {
				c, _, err := policy.VerifyCheckpoint(cp)
				if err == nil && c.Size == 1 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no verified checkpoint of size 1: %v", u, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, err
}
