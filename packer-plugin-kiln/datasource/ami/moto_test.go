package ami

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

// moto is the package's one moto_server; each test uses its own pipeline
// name, so tests see only their own AMIs.
var moto *mototest.Server

func TestMain(m *testing.M) {
	var err error
	if moto, err = mototest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "moto_server:", err)
		os.Exit(1)
	}
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// pipeline is a pipeline name of the test's own.
func pipeline(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
}

// tagged are the tags kiln leaves on a bake of p at ref and commit whose
// test ended with outcome ("" for a test not finished).
func tagged(p, ref, commit, outcome string) map[string]string {
	tags := map[string]string{
		TagPipeline: p,
		TagRef:      ref,
		TagCommit:   commit,
		TagRun:      p + "/" + ref + "/" + commit,
	}
	if outcome != "" {
		tags[TagTest] = outcome
	}
	return tags
}

// nextSecond waits until EC2's creation date, which moto keeps to the
// second, is later than that of the AMIs registered so far.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}
