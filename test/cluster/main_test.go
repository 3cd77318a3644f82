// Package cluster runs kiln as a production cluster runs it, every part a
// process of its own on this machine: a private PostgreSQL, Temporal on it
// (the server kiln embeds, with postgres12 persistence and visibility, run
// by ./temporalpg), one `kiln serve` taking webhooks and three `kiln
// worker`s, each with its own data dir, baking with Debian's packer
// against moto_server. The tests SIGKILL the Temporal server and the
// workers in the middle of runs, and check from the runs' histories and
// from moto what was done, where, and that nothing was done twice or lost.
//
// A failing test prints the end of each kiln process's output;
// KILN_CLUSTER_LOGS=1 prints the workers' for a passing one too.
package cluster

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/test/testkit"
)

var (
	// kilnBin and temporalBin are the binaries under test, built by TestMain.
	kilnBin, temporalBin string
	// pg is the PostgreSQL every test's Temporal server keeps its databases
	// in; nil when skipReason says why there is none.
	pg         *postgresServer
	skipReason error
)

func TestMain(m *testing.M) {
	flag.Parse() // motoserver asks testing.Verbose before m.Run would parse
	code, err := setUpAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster set-up:", err)
		code = 1
	}
	os.Exit(code)
}

// setUpAndRun builds kiln and temporalpg, starts PostgreSQL, runs the tests
// and stops it again. Without PostgreSQL the tests skip (CI installs it).
func setUpAndRun(m *testing.M) (int, error) {
	bin, err := postgresBin()
	if err != nil {
		skipReason = err
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "kiln-cluster-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if kilnBin, err = testkit.BuildKiln(dir); err != nil {
		return 0, err
	}
	temporalBin = filepath.Join(dir, "temporalpg")
	build := exec.Command("go", "build", "-o", temporalBin, "github.com/kiln-ci/kiln/test/cluster/temporalpg")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building temporalpg: %w", err)
	}
	findMoto()
	if pg, err = startPostgres(bin); err != nil {
		return 0, fmt.Errorf("postgresql: %w", err)
	}
	defer pg.stop()
	return m.Run(), nil
}

// findMoto puts pyenv's shims on PATH when moto_server is there only, as
// test/run does.
func findMoto() {
	if _, err := exec.LookPath("moto_server"); err == nil {
		return
	}
	if home, err := os.UserHomeDir(); err == nil {
		shims := filepath.Join(home, ".pyenv", "shims")
		if _, err := os.Stat(filepath.Join(shims, "moto_server")); err == nil {
			os.Setenv("PATH", shims+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	}
}

// requirePostgres skips t on a machine without PostgreSQL.
func requirePostgres(t testing.TB) {
	t.Helper()
	if skipReason != nil {
		t.Skip(skipReason)
	}
}
