package main

import (
	"fmt"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// runCosign adds this functionary's signature to a threshold link waiting in the network. With
// --products the functionary first checks that the pending link records exactly the products it
// built itself: a rebuilder signs what it reproduced, not what it was shown.
func runCosign(e *env, args []string) error {
	fs := e.flags("cosign")
	server := fs.String("server", "", "base URL of a node")
	keyPath := fs.String("key", "", "the functionary's private key (PKCS #8 PEM)")
	pendingID := fs.String("pending", "", "the pending link (sha256:<hex>, from submit or /v1/pending)")
	layout := fs.String("layout", "", "with --step: find the pending link of this layout")
	step := fs.String("step", "", "with --layout: the step whose pending link to sign")
	products := fs.StringArray("products", nil, "this functionary's own products; the link must record exactly these")
	lstrip := fs.StringArray("lstrip-paths", nil, "prefix to strip from product names; repeatable")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *server == "" || *keyPath == "" || (*pendingID == "") == (*layout == "" || *step == "") {
		return usagef("--server, --key, and either --pending or --layout with --step are required")
	}
	signer, keyID, err := client.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	a := client.NewAPI(*server)
	var mine map[string]client.DigestSet
	if len(*products) > 0 {
		if mine, err = client.RecordArtifacts(*products, client.RecordOptions{Lstrip: *lstrip}); err != nil {
			return err
		}
	}
	g, err := client.FindPending(a, *pendingID, *layout, *step, mine)
	if err != nil {
		return err
	}
	m, err := intoto.ParseMetadata(g.Envelope)
	if err != nil {
		return fmt.Errorf("pending link %s: %w", g.ID, err)
	}
	if mine != nil && !client.SameProducts(m, mine) {
		return fmt.Errorf("%w: pending link %s records other products than yours; not signing", client.ErrCheck, g.ID)
	}
	signed, err := client.CosignDocument(g.Envelope, signer, keyID)
	if err != nil {
		return err
	}
	status, out, err := client.Submit(a, signed, g.Layout, nil)
	if err != nil {
		return err
	}
	out["status"] = status
	e.result(out, describeSubmission(status, out))
	return nil
}
