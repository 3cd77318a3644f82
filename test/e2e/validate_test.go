package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestValidate runs `kiln validate` as a pre-commit hook or CI step would: a
// good file exits 0, a bad one exits 1 and names every problem as
// file:line: field: message, so an editor can jump to it.
func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", `repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: WIDGET_SECRET}
pipelines:
  - name: widget
    repo: acme/widget
    triggers: {branch: [main], review: {}}
    stages:
      build: {buildspec: buildspec.yml, timeout: 20m}
`)
	bad := writeFile(t, dir, "bad.yaml", `repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: WIDGET_SECRET}
pipelines:
  - name: widget
    repo: acme/gadget
    triggers:
      schedule: [{cron: "61 * * * *", ref: main}]
    stages:
      build: {buildspec: buildspec.yml, timeout: 0s}
`)

	stdout, stderr, code := runKiln(t, 20*time.Second, cleanEnv(), "validate", good)
	assert.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	assert.Equal(t, good+": ok (1 repos, 1 pipelines)\n", stdout)

	stdout, stderr, code = runKiln(t, 20*time.Second, cleanEnv(), "validate", bad)
	assert.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
	assert.Equal(t, []string{
		bad + `:7: pipelines[0].repo: repo "acme/gadget" is not listed under repos`,
		bad + `:9: pipelines[0].triggers.schedule[0].cron: "61 * * * *" is not a valid cron expression`,
		bad + `:11: pipelines[0].stages.build.timeout: must be longer than zero`,
	}, problemLines(stdout))
	assert.Contains(t, stderr, bad+" is invalid")
}

// problemLines returns each line of validate's output cut after the message's
// first clause, so the test pins location and field but not the wording of
// the cron library's own error.
func problemLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.Index(l, "expression:"); i >= 0 {
			l = l[:i+len("expression")]
		}
		lines = append(lines, l)
	}
	return lines
}
