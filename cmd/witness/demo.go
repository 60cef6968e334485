package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/procs"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// demoMembers are the organizations of the demo network.
var demoMembers = []string{"alpha", "bravo", "charlie", "delta"}

func demoCmd(args []string) int {
	fs := pflag.NewFlagSet("witness demo", pflag.ContinueOnError)
	dir := fs.String("dir", "", "keep the network and the supply chain's files here (default: a temporary directory, removed at the end)")
	keep := fs.Bool("keep", false, "keep the network running afterwards (status pages stay up) until interrupted")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	procs.Set()
	d := &demo{out: os.Stdout}
	if err := d.run(*dir, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "witness demo: %v\n", err)
		return 1
	}
	return 0
}

// demo walks a newcomer through witnessnet: a network of four organizations in this process, a
// supply chain with a build and a 2-of-3 rebuild, a verification that passes, one that fails, and
// an audit.
type demo struct {
	out   io.Writer
	step  int
	dir   string
	nw    *localnet.Network
	urls  []string
	pol   *verify.Policy
	keys  map[string]string // party -> private key path
	layID string
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "   %s\n", fmt.Sprintf(format, args...))
}

func (d *demo) run(dir string, keep bool) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "witnessnet-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	d.dir = abs
	fmt.Fprintln(d.out, "witnessnet demo: a software supply chain witnessed by four organizations, all in this process")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := d.startNetwork(ctx); err != nil {
		return err
	}
	defer d.nw.Close()
	for _, step := range []func() error{d.makeKeys, d.registerLayout, d.build, d.rebuild, d.verifyPass, d.verifyTampered, d.audit} {
		if err := step(); err != nil {
			return err
		}
	}
	d.say("Every node serves a status page: %s/", d.urls[0])
	fmt.Fprintln(d.out, "\nDone: the release verified against a log that four organizations cosigned, the tampered copy did not.")
	if keep {
		fmt.Fprintln(d.out, "The network keeps running (Ctrl-C to stop).")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return nil
}

func (d *demo) startNetwork(ctx context.Context) error {
	nw, err := localnet.Start(ctx, localnet.Config{Nodes: len(demoMembers), Names: demoMembers, Dir: filepath.Join(d.dir, "network"),
		Tune: func(c *node.Config) { c.CheckpointInterval = 100 * time.Millisecond }})
	if err != nil {
		return err
	}
	d.nw, d.urls = nw, nw.URLs()
	if d.pol, err = verify.ParsePolicy(nw.Policy); err != nil {
		return err
	}
	lead, err := nw.Leader(ctx)
	if err != nil {
		return err
	}
	d.say("Started a network of %d organizations: %s", len(demoMembers), strings.Join(demoMembers, ", "))
	d.detail("each runs a witness node: raft over TCP with its log on disk, its own Trillian tree on bbolt, HTTP on %s ...", d.urls[0])
	d.detail("raft leader: %s; a checkpoint counts once %d of %d members cosigned it (policy: %s)", demoMembers[lead], localnet.Quorum(len(demoMembers)), len(demoMembers), nw.PolicyPath())
	return nil
}

func (d *demo) makeKeys() error {
	d.keys = map[string]string{}
	for _, p := range []string{"owner", "dev", "rebuilder1", "rebuilder2", "rebuilder3"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		der, _ := x509.MarshalPKCS8PrivateKey(priv)
		pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
		base := filepath.Join(d.dir, p)
		if err := os.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(base+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
			return err
		}
		d.keys[p] = base + ".key"
	}
	d.say("Made Ed25519 keys: the project owner signs the layout, dev builds, three independent rebuilders rebuild")
	return nil
}

func (d *demo) pub(party string) (*intoto.Key, string, error) {
	b, err := os.ReadFile(strings.TrimSuffix(d.keys[party], ".key") + ".pub")
	if err != nil {
		return nil, "", err
	}
	k, err := intoto.ParseKeyPEM(b, "")
	return k, string(b), err
}

func (d *demo) registerLayout() error {
	keys, ids := map[string]any{}, map[string]string{}
	for _, p := range []string{"dev", "rebuilder1", "rebuilder2", "rebuilder3"} {
		k, _, err := d.pub(p)
		if err != nil {
			return err
		}
		keys[k.KeyID], ids[p] = k.JSON(), k.KeyID
	}
	layout := map[string]any{
		"_type": "layout", "expires": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339), "readme": "witnessnet demo", "keys": keys, "inspect": []any{},
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{ids["dev"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"CREATE", "hello.txt"}, {"DISALLOW", "*"}}},
			map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": []string{ids["rebuilder1"], ids["rebuilder2"], ids["rebuilder3"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"MATCH", "hello.txt", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}},
		},
	}
	doc, _ := json.Marshal(layout)
	signer, keyID, err := client.LoadSigner(d.keys["owner"])
	if err != nil {
		return err
	}
	env, err := client.SignDocument(doc, "dsse", intoto.PayloadTypeInToto, signer, keyID)
	if err != nil {
		return err
	}
	_, ownerPEM, err := d.pub("owner")
	if err != nil {
		return err
	}
	_, out, err := client.Submit(client.NewAPI(d.urls[0]), env, "", []string{ownerPEM})
	if err != nil {
		return err
	}
	d.layID = fmt.Sprint(out["entry"])
	d.say("The owner registered a signed layout in the log: %s", d.layID)
	d.detail("step build: dev creates hello.txt; step rebuild: 2 of 3 rebuilders must produce the same hello.txt")
	return nil
}

// record runs a step the way `client run` does and submits its link through server.
func (d *demo) record(party, step, workdir, content, server string) (int, map[string]any, error) {
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		return 0, nil, err
	}
	cmd := []string{"sh", "-c", fmt.Sprintf("printf '%s\\n' > hello.txt", content)}
	by, code, err := client.RunStep(workdir, cmd, io.Discard, io.Discard)
	if err != nil || code != 0 {
		return 0, nil, fmt.Errorf("%s: %v (exit %d)", strings.Join(cmd, " "), err, code)
	}
	prods, err := recordIn(workdir, "hello.txt")
	if err != nil {
		return 0, nil, err
	}
	link, _ := json.Marshal(map[string]any{"_type": "link", "name": step, "command": cmd, "materials": map[string]any{},
		"products": prods, "byproducts": by, "environment": map[string]any{}})
	signer, keyID, err := client.LoadSigner(d.keys[party])
	if err != nil {
		return 0, nil, err
	}
	env, err := client.SignDocument(link, "dsse", intoto.PayloadTypeInToto, signer, keyID)
	if err != nil {
		return 0, nil, err
	}
	return client.Submit(client.NewAPI(server), env, d.layID, nil)
}

func (d *demo) build() error {
	status, out, err := d.record("dev", "build", filepath.Join(d.dir, "dev"), "hello from witnessnet", d.urls[1])
	if err != nil {
		return err
	}
	d.say("dev built hello.txt, recorded like `client run` (materials, command, products), signed and submitted through %s", demoMembers[1])
	d.detail("%d: appended at index %v", status, out["index"])
	return nil
}

func (d *demo) rebuild() error {
	d.say("The rebuilders rebuild hello.txt on their own machines")
	status, out, err := d.record("rebuilder1", "rebuild", filepath.Join(d.dir, "rebuilder1"), "hello from witnessnet", d.urls[2])
	if err != nil {
		return err
	}
	d.detail("rebuilder1 reproduced it and submitted its link through %s: %d, pending with %v of %v signatures", demoMembers[2], status, out["signatures"], out["threshold"])
	status, out, err = d.record("rebuilder3", "rebuild", filepath.Join(d.dir, "rebuilder3"), "hello from witnessnet, another toolchain", d.urls[3])
	if err != nil {
		return err
	}
	d.detail("rebuilder3 got different bytes; its link waits alone (%d, %v of %v): the network lists the disagreement", status, out["signatures"], out["threshold"])
	_, _, err = d.cosignRebuild(filepath.Join(d.dir, "rebuilder2"))
	return err
}

// recordIn hashes artifacts of a step that ran in dir, named relative to dir.
func recordIn(dir string, paths ...string) (map[string]intoto.DigestSet, error) {
	var abs []string
	for _, p := range paths {
		abs = append(abs, filepath.Join(dir, p))
	}
	return client.RecordArtifacts(abs, client.RecordOptions{Lstrip: []string{filepath.ToSlash(dir) + "/"}})
}

// cosignRebuild is rebuilder2's `client cosign`: rebuild, then sign the pending link whose
// products are exactly its own.
func (d *demo) cosignRebuild(wd string) (int, map[string]any, error) {
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return 0, nil, err
	}
	cmd := []string{"sh", "-c", "printf 'hello from witnessnet\\n' > hello.txt"}
	if _, code, err := client.RunStep(wd, cmd, io.Discard, io.Discard); err != nil || code != 0 {
		return 0, nil, fmt.Errorf("rebuild: %v (exit %d)", err, code)
	}
	mine, err := recordIn(wd, "hello.txt")
	if err != nil {
		return 0, nil, err
	}
	a := client.NewAPI(d.urls[0])
	g, err := client.FindPending(a, "", d.layID, "rebuild", mine)
	if err != nil {
		return 0, nil, err
	}
	signer, keyID, err := client.LoadSigner(d.keys["rebuilder2"])
	if err != nil {
		return 0, nil, err
	}
	env, err := client.CosignDocument(g.Envelope, signer, keyID)
	if err != nil {
		return 0, nil, err
	}
	status, out, err := client.Submit(a, env, g.Layout, nil)
	if err != nil {
		return 0, nil, err
	}
	d.detail("rebuilder2 reproduced it and co-signed rebuilder1's link (like `client cosign`) through %s: %d, appended at index %v with 2 signatures", demoMembers[0], status, out["index"])
	return status, out, nil
}

func (d *demo) verifyWith(product string) (*client.Outcome, []client.PendingGroup, error) {
	_, ownerPEM, err := d.pub("owner")
	if err != nil {
		return nil, nil, err
	}
	owner, err := intoto.ParseKeyPEM([]byte(ownerPEM), "")
	if err != nil {
		return nil, nil, err
	}
	b, pending, err := client.FetchBundle(d.pol, d.urls, d.layID, time.Minute)
	if err != nil {
		return nil, nil, err
	}
	prods := map[string]intoto.DigestSet{"hello.txt": intoto.DigestOf([]byte(product))}
	out, err := client.VerifyBundle(d.pol, b, client.VerifyOptions{Layout: d.layID, LayoutKeys: []*intoto.Key{owner}, Products: prods})
	return out, pending, err
}

func (d *demo) verifyPass() error {
	out, pending, err := d.verifyWith("hello from witnessnet\n")
	if err != nil {
		return fmt.Errorf("verification of the release failed: %w", err)
	}
	d.say("A consumer verifies hello.txt against the log (like `client verify`): PASS")
	d.detail("checkpoint of size %d cosigned by %s", out.CheckpointSize, strings.Join(out.Cosigners, ", "))
	for _, s := range out.Report.Steps {
		d.detail("step %s: %d of %d functionaries counted, every link proven included", s.Name, len(s.Counted), s.Threshold)
	}
	for _, p := range pending {
		d.detail("still pending, not in the log: a rebuild link with %d of %d signatures (the disagreeing rebuilder)", p.Signatures, p.Threshold)
	}
	return nil
}

func (d *demo) verifyTampered() error {
	_, _, err := d.verifyWith("hello from witnessnet, with a backdoor\n")
	if err == nil {
		return errors.New("a tampered product verified")
	}
	d.say("Someone swaps hello.txt for a modified copy; verification: FAIL")
	d.detail("reason: %v", err)
	return nil
}

func (d *demo) audit() error {
	rep, err := client.Audit(client.AuditConfig{Servers: d.urls, Policy: d.pol, StateDir: filepath.Join(d.dir, "auditor"), Full: true})
	if err != nil {
		return err
	}
	d.say("An auditor checks the log (like `client audit --full`): OK")
	d.detail("%d nodes show one consistent log; %d entries re-verified from the tiles; the root matches the checkpoint", len(d.urls), rep.Entries)
	return nil
}
