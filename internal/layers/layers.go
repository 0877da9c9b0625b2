// Package layers holds no code, only a test that keeps the package comments
// honest: each pgfleet package imports no pgfleet package but those its
// comment allows, so that cmd stays on top, the transport at the bottom,
// and nothing points back up.
package layers
