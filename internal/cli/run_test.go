package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/temporal"

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

// TestConsoleShowsOneLinePerField: a multi-line field, such as a build
// failure with its log's last lines, shows its first line and a count.
func TestConsoleShowsOneLinePerField(t *testing.T) {
	var out bytes.Buffer
	t.Setenv("KILN_LOG_FORMAT", "")
	log := newLogger(&out)
	log.Warn().Err(errors.New("phase build: command \"exit 3\" ended the build shell with status 3; last lines of log:\na\nb")).
		Str("ref", "refs/heads/main").Str("note", "two words").Bool("started", true).Strs("ids", []string{"a/b"}).
		Int("n", 3).Float64("took", 1.5).Msg("build failed")
	line := out.String()
	assert.Contains(t, line, `error="phase build: command \"exit 3\" ended the build shell with status 3; last lines of log:" [+2 lines]`)
	assert.Contains(t, line, "ref=refs/heads/main")
	assert.Contains(t, line, `note="two words"`)
	assert.Contains(t, line, `started=true`)
	assert.Contains(t, line, `ids=["a/b"]`)
	assert.Contains(t, line, `n=3`)
	assert.Contains(t, line, `took=1.5`)
	assert.Equal(t, 1, strings.Count(line, "\n"), line)
}

// TestSDKActivityErrorOnlyWhenRetried: the SDK's "Activity error." line is
// left out for a permanent failure, which the run's own lines tell, and
// kept for one that will be retried.
func TestSDKActivityErrorOnlyWhenRetried(t *testing.T) {
	var out bytes.Buffer
	l := sdkLogger(zerolog.New(&out))
	l.Error("Activity error.", "ActivityType", "Build", "Error", temporal.NewNonRetryableApplicationError("status 3", "BuildFailed", nil))
	assert.Empty(t, out.String())
	l.Error("Activity error.", "ActivityType", "Build", "Error", errors.New("clone: connection reset"))
	assert.Contains(t, out.String(), "connection reset")
}
