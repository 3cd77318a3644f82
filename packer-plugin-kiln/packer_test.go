package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

// packer19 is the Packer 1.9 binary to run: $KILN_PACKER_1_9, or where
// kiln's tooling caches Packer 1.9.4.
func packer19(t *testing.T) string {
	if p := os.Getenv("KILN_PACKER_1_9"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "kiln-ci", "packer-v1.9.4", "packer")
}

// TestKilnAMIPacker runs a real Packer 1.9 with the plugin installed the way
// kiln installs it: the binary packer-plugin-kiln directly in a directory
// named by PACKER_PLUGIN_PATH. Packer 1.9 loads every executable
// <dir>/packer-plugin-* there and names the components of
// packer-plugin-kiln "kiln-<name>" (packer/plugin.go, Discover and
// DiscoverMultiPlugin). The template writes data.kiln-ami.base's id,
// commit and kiln:run tag to a file from a null source; the test checks they
// are the newest passed AMI's, not a newer failed one's.
func TestKilnAMIPacker(t *testing.T) {
	packer := packer19(t)
	if _, err := os.Stat(packer); err != nil {
		t.Skipf("Packer 1.9 not at %s (set KILN_PACKER_1_9 to its path): %v", packer, err)
	}
	moto, err := mototest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	c := moto.EC2("us-east-1")
	tags := func(commit, outcome string) map[string]string {
		return map[string]string{
			"kiln:pipeline": "base", "kiln:ref": "refs/heads/main", "kiln:commit": commit,
			"kiln:run": "base/main/" + commit, "kiln:test": outcome,
		}
	}
	mototest.Image(t, c, "base-1", tags("c1", "passed"))
	time.Sleep(1100 * time.Millisecond) // creation dates are to the second
	want := mototest.Image(t, c, "base-2", tags("c2", "passed"))
	time.Sleep(1100 * time.Millisecond)
	failed := mototest.Image(t, c, "base-3", tags("c3", "failed"))

	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "packer-plugin-kiln"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	out := filepath.Join(dir, "base-ami")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, packer, "build",
		"-var", "endpoint="+moto.URL, "-var", "out="+out, filepath.Join("testdata", "base.pkr.hcl"))
	cmd.Env = append(os.Environ(),
		"PACKER_PLUGIN_PATH="+plugins,
		"PACKER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"PACKER_CACHE_DIR="+filepath.Join(dir, "cache"),
		"CHECKPOINT_DISABLE=1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, log)
	}

	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the shell-local provisioner wrote nothing: %v\n%s", err, log)
	}
	if line := strings.TrimSpace(string(got)); line != want+" c2 base/main/c2" {
		t.Errorf("Packer resolved data.kiln-ami.base to %q, want %q (not the failed %s)", line, want+" c2 base/main/c2", failed)
	}
}
