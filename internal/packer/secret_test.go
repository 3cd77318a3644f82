package packer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kiln-ci/kiln/internal/scrub"
)

// secret contains a comma, which packer escapes in machine-readable lines, so
// the test also proves kiln finds a secret in its escaped form.
const secret = "hunter2,Sup3r-s3cret"

// assertNoSecret fails if the secret reached anything kiln shows or returns,
// and proves it was scrubbed rather than never printed.
func assertNoSecret(t *testing.T, rec *recorder, res *Result, err error) {
	t.Helper()
	for _, part := range []string{secret, escape(secret), "Sup3r-s3cret"} {
		if strings.Contains(rec.log.String(), part) {
			t.Errorf("log contains the secret:\n%s", rec.log.String())
		}
		for _, p := range rec.progress {
			if strings.Contains(p.LastLine+p.Step, part) {
				t.Errorf("progress contains the secret: %+v", p)
			}
		}
		if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), part) {
			t.Errorf("error contains the secret: %+v", err)
		}
		var be *BuildError
		if errors.As(err, &be) && strings.Contains(strings.Join(append(be.LogTail, be.Errors...), "\n"), part) {
			t.Errorf("BuildError contains the secret: %+v", be)
		}
		if res != nil && strings.Contains(fmt.Sprintf("%+v", res), part) {
			t.Errorf("result contains the secret: %+v", res)
		}
	}
	if !strings.Contains(rec.log.String(), "the secret is "+scrub.Redacted) {
		t.Errorf("log does not show the scrubbed echo:\n%s", rec.log.String())
	}
}

// TestBuildScrubsSecrets: a sensitive -var echoed by shell-local and put into
// an AMI tag (packer prints both in clear with -machine-readable) never
// appears in the log, progress, error or result.
func TestBuildScrubsSecrets(t *testing.T) {
	for _, script := range []string{"echo done", "exit 7"} {
		t.Run(strings.Fields(script)[0], func(t *testing.T) {
			rec := &recorder{}
			o := hclOptions(t, rec, script+" # "+secret)
			o.SecretVars = map[string]string{"secret": secret}
			res, err := Build(context.Background(), o)
			if script == "echo done" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				tags := checkAMIs(t, res.Artifacts)
				if tags["Secret"] != secret {
					t.Fatalf("tag Secret = %q: the secret never reached packer, the test proves nothing", tags["Secret"])
				}
				if !strings.Contains(rec.log.String(), `"Secret": "`+scrub.Redacted+`"`) {
					t.Errorf("log does not show the scrubbed tag:\n%s", rec.log.String())
				}
			} else if err == nil {
				t.Fatal("failing build succeeded")
			}
			assertNoSecret(t, rec, res, err)
		})
	}
}
