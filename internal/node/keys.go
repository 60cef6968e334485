package node

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
)

// WitnessPrivateKey extracts the Ed25519 private key from a signed-note private key
// ("PRIVATE+KEY+<name>+<hash>+<base64 of 0x01 or 0x04 and the 32-byte seed>"), the form the
// witness key file holds. The node uses it for forwarding signatures, domain-separated from
// cosignatures.
func WitnessPrivateKey(skey string) (ed25519.PrivateKey, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("witness key: not a signed-note private key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || (raw[0] != 0x01 && raw[0] != 0x04) {
		return nil, errors.New("witness key: want an Ed25519 key")
	}
	return ed25519.NewKeyFromSeed(raw[1:]), nil
}

// WitnessPublicKey extracts the Ed25519 public key from a witness's verifier key as a policy
// lists it ("<name>+<hash>+<base64 of 0x01 or 0x04 and the 32-byte key>").
func WitnessPublicKey(vkey string) (ed25519.PublicKey, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("witness verifier key: want name+hash+key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || (raw[0] != 0x01 && raw[0] != 0x04) {
		return nil, errors.New("witness verifier key: want an Ed25519 key")
	}
	return ed25519.PublicKey(raw[1:]), nil
}
