package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/workflows"
)

// TestPrintTargets: `kiln run --wait` and `kiln retry --wait` print each
// target when its state changes, and once, how to retry a waiting run.
func TestPrintTargets(t *testing.T) {
	p := workflows.Progress{RunID: "ami/main/manual-1", Stages: []workflows.StageProgress{{Name: "distribute", State: "running"}},
		Distribution: &workflows.DistributionProgress{Targets: []workflows.TargetProgress{
			{Account: "222222222222", Region: "eu-west-1", Mode: "copy", State: "succeeded", AMI: "ami-1"},
			{Account: "444444444444", Region: "eu-west-1", Mode: "copy", State: "failed", Error: "access denied"},
		}, WaitingForRetry: true, RetryDeadline: time.Date(2026, 11, 23, 7, 0, 0, 0, time.Local)}}
	var out bytes.Buffer
	seen := map[string]string{}
	printProgress(&out, seen, p)
	printProgress(&out, seen, p)
	assert.Equal(t, strings.Join([]string{
		"distribute running",
		"  222222222222/eu-west-1 copy succeeded ami-1",
		"  444444444444/eu-west-1 copy failed: access denied",
		"distribute waiting for retry until 2026-11-23 07:00:00: fix the failed targets, then run kiln retry ami/main/manual-1",
		"",
	}, "\n"), out.String())

	out.Reset()
	p.Distribution.WaitingForRetry, p.Distribution.Retries = false, 1
	p.Distribution.Targets[1] = workflows.TargetProgress{Account: "444444444444", Region: "eu-west-1", Mode: "copy",
		State: "succeeded", AMI: "ami-2", Generation: 1}
	printProgress(&out, seen, p)
	assert.Equal(t, "  444444444444/eu-west-1 copy succeeded ami-2\n", out.String())
}
