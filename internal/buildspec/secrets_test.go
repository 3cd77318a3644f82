package buildspec

import (
	"errors"
	"testing"
)

// TestSecretsReachShellNotLog: a declared secret is in every shell's
// environment, also after a command ended the first shell, and neither the
// log nor a failure's tail (which goes into the run's history) holds it,
// however the output splits it.
func TestSecretsReachShellNotLog(t *testing.T) {
	const token = "tok-3f9a1c-secret-value"
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - test "${#API_TOKEN}" = 23 && echo "the token is $API_TOKEN"
      - printf '%s' "${API_TOKEN%%-secret-value}"; sleep 0.2; printf -- '-secret-value and more\n'
      - echo "again $API_TOKEN"; echo "failing with $API_TOKEN" >&2; false
`, func(o *RunOptions) { o.Secrets = []Secret{{Name: "API_TOKEN", Value: token}} })
	var cmdErr *CommandError
	if !errors.As(b.err, &cmdErr) {
		t.Fatalf("err = %v, want the last command's failure", b.err)
	}
	log := b.log.String()
	wantNotContains(t, log, "3f9a1c")
	wantContains(t, log, "the token is <sensitive>")
	wantContains(t, log, "<sensitive> and more")
	wantContains(t, log, "again <sensitive>")
	tail := cmdErr.Error()
	wantContains(t, tail, "failing with <sensitive>")
	wantNotContains(t, tail, "3f9a1c")

	// A shell a command ended is replaced by one that has the secret too.
	b = runSpec(t, `version: 0.2
phases:
  build:
    commands: [exit 0]
  post_build:
    commands: ['test "${#API_TOKEN}" = 23']
`, func(o *RunOptions) { o.Secrets = []Secret{{Name: "API_TOKEN", Value: token}} })
	if got := b.statuses(); got != "build=FAILED post_build=SUCCEEDED" {
		t.Errorf("phases = %s, want the new shell's post_build to see the secret", got)
	}
}
