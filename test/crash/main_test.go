// Package crash kills a kiln worker with SIGKILL in the middle of a
// distribution and starts a new one, to show that the distribute stage is
// durable without doing anything twice: Packer runs once, every target ends
// with exactly one AMI, and no copy is started twice.
//
// Everything is real except AWS: the kiln binary runs as `kiln worker`
// processes against the embedded Temporal server (test/testkit), Debian's
// packer 1.6.6 bakes against a private moto_server, and every AWS call of the
// worker and of Packer goes through the recording proxy (test/awsproxy),
// which lets the target accounts copy the shared AMI and keeps copies pending
// long enough to kill the worker while they are.
package crash

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/test/testkit"
)

// kilnBin is the kiln binary under test, built by TestMain.
var kilnBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds the binary into a temp dir, makes moto_server findable
// as test/run does, runs the tests and removes the binary again.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if kilnBin, err = testkit.BuildKiln(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		if home, err := os.UserHomeDir(); err == nil {
			shims := filepath.Join(home, ".pyenv", "shims")
			if _, err := os.Stat(filepath.Join(shims, "moto_server")); err == nil {
				os.Setenv("PATH", shims+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
		}
	}
	return m.Run()
}
