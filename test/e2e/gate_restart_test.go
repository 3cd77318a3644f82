package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/examples"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// gateYAML bakes the example's AMI against moto and distributes it behind
// an approval gate whose approvers are a group.
const gateYAML = `approver_groups:
  release: [ada]
repos:
  - name: e2e/gate-ami
    clone_url: {{REPO}}
    webhook_secret: {file: {{SECRET}}}
pipelines:
  - name: ami
    repo: e2e/gate-ami
    triggers: {manual: true}
    stages:
      build: {buildspec: buildspec.yml}
      bake:
        template: ami.pkr.hcl
        region: us-east-1
        vars: {endpoint: {{ENDPOINT}}}
      distribute:
        approval: {required: true, approvers: ["@release"]}
        targets:
          - {account: "222222222222", mode: share, regions: [{region: us-east-1}]}
`

// TestDistributeGateSurvivesRestart: a run baked its AMI and waits, before
// distribute, for an approval. kill -9 kiln dev, start it again, and the
// wait is still there: a login outside the gate's group is refused, naming
// who may, and the group's member lets the run share the AMI. moto runs
// apart from kiln, as AWS does, so the AMI outlives kiln.
func TestDistributeGateSurvivesRestart(t *testing.T) {
	t.Parallel()
	moto := motoserver.Start(t)
	files := map[string]string{}
	for _, name := range []string{"buildspec.yml", "build.sh", "ami.pkr.hcl", "VERSION", "README.md"} {
		b, err := examples.Files.ReadFile("repo/" + name)
		require.NoError(t, err)
		files[name] = string(b)
	}
	f := newDevFixture(t, strings.ReplaceAll(gateYAML, "{{ENDPOINT}}", strconv.Quote(moto.URL)), "gate-ami-secret\n", files)
	ports := freeDevPorts(t)
	args := append(ports.devArgs(f.data), "--config", f.config)
	env := cleanEnv(moto.Env()...)

	first := startKiln(t, env, args...)
	waitHealthy(t, first, ports, 60*time.Second)
	stdout, stderr, code := runKiln(t, 30*time.Second, cleanEnv(), "run", "--pipeline", "ami", "--ref", "main", "--temporal-address", ports.address())
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)
	waitStageFor(t, ports, id, "distribute: awaiting approval", 90*time.Second)

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	first.waitExit(t, 10*time.Second)
	second := startKiln(t, env, args...)
	waitHealthy(t, second, ports, 60*time.Second)
	assert.Equal(t, "distribute: awaiting approval", listRuns(t, ports)[id].Stage, "still waiting after the restart")

	temporal := []string{"--temporal-address", ports.address()}
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), append([]string{"approve", id, "--by", "bob"}, temporal...)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "ada", "the refusal names who may approve")
	stdout, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), append([]string{"approve", id, "--by", "ada"}, temporal...)...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "approved the distribute stage of "+id+"\n", stdout)

	run := waitRun(t, ports, 90*time.Second, func(r runSummary) bool { return r.WorkflowID == id })
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "done", run.Stage)
	assert.Equal(t, "distribute approved by ada via cli", run.Approvals, "kiln runs says who approved")
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), append([]string{"watch", id}, temporal...)...)
	assert.Equal(t, 0, code, stderr)
	assert.Regexp(t, `(?m)^  share      222222222222/us-east-1 ami-[0-9a-f]+$`, stderr)
	assert.Contains(t, stderr, fmt.Sprintf("  approved   distribute by ada via %s\n", "cli"))
}

// waitStageFor waits until run id's KilnStage is stage, and returns it.
func waitStageFor(t *testing.T, ports devPorts, id, stage string, timeout time.Duration) runSummary {
	t.Helper()
	var last runSummary
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = listRuns(t, ports)[id]; last.Stage == stage {
			return last
		}
	}
	t.Fatalf("run %s did not reach stage %q within %s; last: %+v", id, stage, timeout, last)
	return last
}
