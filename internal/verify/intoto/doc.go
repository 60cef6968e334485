// Package intoto is witnessnet's in-toto engine: layouts and links as DSSE envelopes (classic
// documents or ITE-6 statements with a link predicate) and as classic {"signed", "signatures"}
// metablocks; keys in PEM and securesystemslib JSON; artifact rules, thresholds, sublayouts and
// parameter substitution; a structured report of what counted and why.
//
// It is pure: it reads no files, runs no commands, prints nothing, and does not panic on input.
// Callers hand it parsed documents and the digests of the final products they hold.
//
// Guarantees:
//   - Signatures are checked over the bytes received: DSSE over PAE of the exact payload,
//     metablocks over the canonical JSON of the "signed" object as received (decoded generically,
//     never through a struct that could drop a field).
//   - Key IDs are computed as the reference tools compute them, but signatures are matched by
//     trying keys, and thresholds count distinct key material: one key listed under two IDs, or
//     signing twice, counts once.
//   - A link counts for a step only if its signed name is the step's name and one of the step's
//     functionaries signed it. Where links come from (file names, log queries) does not matter.
//   - Layouts are validated before use (threshold >= 1 and reachable, keys present and not listed
//     twice, unique names, rule grammar), and expire when expires <= now.
//   - Default threshold mode is the reference behaviour: every validly signed link of a step must
//     agree on materials and products. A step that sets "witnessnet_quorum": true passes when
//     threshold functionaries agree, and the others are reported as dissent.
//   - Inspections are declared, not executed: their expected_materials are checked against the
//     final products the verifier supplies; a final product no inspection names must be a
//     product of some step with the same digests.
//
// Every failure wraps one of the package's sentinel errors (ErrExpired, ErrThresholdNotMet, ...).
package intoto
