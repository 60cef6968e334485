// Package verify holds witnessnet's pure checks: DSSE envelopes and the keys that sign them
// (Ed25519, ECDSA P-256/P-384, RSA PSS and PKCS #1 v1.5). It needs no network and no disk, never
// panics on input, and answers with typed errors.
//
// Signatures are verified over the bytes received (DSSE: over PAE of the exact payload), never
// over a re-encoding.
package verify
