//go:build tools

// Package tools pins the commands we build from this module, so that go.mod and go.sum
// list everything they need.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
