package intoto

import "errors"

// Errors of the in-toto engine. Every failure wraps one of them, so callers and tests can tell
// the reasons apart with errors.Is.
var (
	// ErrMalformed: a document, key or rule does not parse.
	ErrMalformed = errors.New("malformed in-toto metadata")
	// ErrInvalidLayout: a layout parses but breaks the layout rules (threshold, keys, names, rules).
	ErrInvalidLayout = errors.New("invalid layout")
	// ErrLayoutSignature: the layout is not signed by every given layout key.
	ErrLayoutSignature = errors.New("layout signature does not verify")
	// ErrExpired: the layout's expiry is at or before the verification time.
	ErrExpired = errors.New("layout expired")
	// ErrMissingLink: a step has no link from an authorized functionary.
	ErrMissingLink = errors.New("missing link")
	// ErrThresholdNotMet: fewer distinct functionaries than the step's threshold signed links.
	ErrThresholdNotMet = errors.New("threshold not met")
	// ErrLinksDisagree: links for one step report different materials or products.
	ErrLinksDisagree = errors.New("links of one step disagree")
	// ErrRuleViolation: an artifact rule (DISALLOW) failed.
	ErrRuleViolation = errors.New("artifact rule violated")
	// ErrRequireMissing: a REQUIRE rule names an artifact that is not there.
	ErrRequireMissing = errors.New("required artifact missing")
	// ErrProductMismatch: a final product does not match what the supply chain produced.
	ErrProductMismatch = errors.New("final product does not match the supply chain")
	// ErrUnauthorizedSigner: a link is signed by a key that is not a functionary of its step.
	ErrUnauthorizedSigner = errors.New("signer is not a functionary of the step")
	// ErrSignature: a signature does not verify.
	ErrSignature = errors.New("signature does not verify")
	// ErrSublayout: a sublayout failed verification.
	ErrSublayout = errors.New("sublayout verification failed")
)
