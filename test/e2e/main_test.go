// Package e2e drives the kiln binary as a user would: it builds cmd/kiln once,
// then runs `kiln dev`, `kiln run`, `kiln runs` and `kiln validate` as
// processes with their own ports and data directories, and checks what they
// print, how they exit, and what survives a crash.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/kiln-ci/kiln/test/testkit"
)

// kilnBin is the kiln binary under test, built by TestMain.
var kilnBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds the binary into a temp dir, runs the tests and removes
// the binary again.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if kilnBin, err = testkit.BuildKiln(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
