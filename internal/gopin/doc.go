// Package gopin guards the Go version the module asks for. nixpkgs builds with
// GOTOOLCHAIN=local, so the go line of go.mod and of every vendored module must
// stay at or below the Go that the pinned nixpkgs ships (MaxGo). Its test fails
// the build the moment a dependency upgrade raises either.
package gopin

// MaxGo is the newest Go language version the module may require: the Go of
// nixos-25.05 (1.24), the oldest nixpkgs release the flake is meant to build on.
const MaxGo = "1.24"
