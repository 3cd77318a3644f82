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

// TestSecretsStayOutOfTheResult: the Result goes into the run's history, so
// an exported variable or a test report made from a secret holds it
// scrubbed.
func TestSecretsStayOutOfTheResult(t *testing.T) {
	const token = "tok-5e1f2a-result"
	b := runSpec(t, `version: 0.2
env:
  exported-variables: [AUTH_HEADER]
phases:
  build:
    commands:
      - AUTH_HEADER="Bearer $API_TOKEN"
      - mkdir -p reports && printf '<testsuite name="s"><testcase name="TestLogin"><failure message="login with %s refused"/></testcase></testsuite>' "$API_TOKEN" > reports/unit.xml
reports:
  unit:
    files: [reports/unit.xml]
`, func(o *RunOptions) { o.Secrets = []Secret{{Name: "API_TOKEN", Value: token}} })
	if b.err != nil {
		t.Fatalf("Run: %v\n%s", b.err, b.log.String())
	}
	if got := b.res.Exported["AUTH_HEADER"]; got != "Bearer <sensitive>" {
		t.Errorf("AUTH_HEADER = %q", got)
	}
	if len(b.res.Reports) != 1 || len(b.res.Reports[0].Summary.Failures) != 1 {
		t.Fatalf("reports = %+v", b.res.Reports)
	}
	if got := b.res.Reports[0].Summary.Failures[0].Message; got != "login with <sensitive> refused" {
		t.Errorf("failure message = %q", got)
	}
}
