package buildkit

import (
	"errors"
	"slices"
	"testing"
)

func TestBases(t *testing.T) {
	df := []byte(`# syntax=docker/dockerfile:1
ARG BASE=alpine:3.20
ARG TOOLS
FROM golang:1.26 AS build
RUN go version
FROM ${BASE} AS runtime
COPY --from=build /x /x
FROM build AS again
FROM scratch
FROM ${TOOLS:-busybox}:1
FROM golang:1.26
`)
	got, err := Bases(df, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"golang:1.26", "alpine:3.20", "busybox:1"}; !slices.Equal(got, want) {
		t.Errorf("Bases = %q, want %q", got, want)
	}
	got, err = Bases(df, map[string]string{"BASE": "debian:12", "TOOLS": "reg.local/tools"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"golang:1.26", "debian:12", "reg.local/tools:1"}; !slices.Equal(got, want) {
		t.Errorf("Bases with build args = %q, want %q", got, want)
	}
	if _, err := Bases([]byte("RUN echo no from\n"), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a Dockerfile without FROM: err = %v, want ErrInvalid", err)
	}
}

// TestContextName: a pin reaches BuildKit under the name its frontend looks
// the FROM image up by, however the Dockerfile spells it.
func TestContextName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox:latest":                  "busybox",
		"busybox":                         "busybox",
		"docker.io/library/alpine:3.20":   "alpine:3.20",
		"127.0.0.1:5000/busybox:1":        "127.0.0.1:5000/busybox:1",
		"registry.example.com/a/b:latest": "registry.example.com/a/b",
	} {
		if got := contextName(in); got != want {
			t.Errorf("contextName(%q) = %q, want %q", in, got, want)
		}
	}
}
