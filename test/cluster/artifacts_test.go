package cluster

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// startArtifacts makes the artifact bucket in moto (straight, not through
// the proxy) and starts the registry, both before kiln.yaml names them.
func (c *cluster) startArtifacts(t testing.TB, ctx context.Context) {
	t.Helper()
	s3c := s3.NewFromConfig(motoAs(c.moto.URL, "", bakeRegion), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(artifactBucket)})
	require.NoError(t, err, "create the artifact bucket %s in moto", artifactBucket)
	c.registry = startRegistry(t)
}

// publishTry is one PublishImage the workflow scheduled: on which queue,
// and how it ended; for a timeout, which one, and which timeout ended the
// attempt before it (Temporal's cause: the last failure retried).
type publishTry struct {
	queue          string
	closed         enumspb.EventType
	timeout, cause enumspb.TimeoutType
}

// publishTries reads the PublishImages of a history, in scheduling order.
func publishTries(events []*historypb.HistoryEvent) []publishTry {
	var out []publishTry
	at := map[int64]int{}
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "PublishImage" {
			at[ev.GetEventId()] = len(out)
			out = append(out, publishTry{queue: a.GetTaskQueue().GetName()})
			continue
		}
		var scheduled int64
		switch {
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			scheduled = ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
		case ev.GetActivityTaskFailedEventAttributes() != nil:
			scheduled = ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
		case ev.GetActivityTaskCanceledEventAttributes() != nil:
			scheduled = ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()
		case ev.GetActivityTaskTimedOutEventAttributes() != nil:
			a := ev.GetActivityTaskTimedOutEventAttributes()
			scheduled = a.GetScheduledEventId()
			if i, ok := at[scheduled]; ok {
				out[i].timeout = a.GetFailure().GetTimeoutFailureInfo().GetTimeoutType()
				out[i].cause = a.GetFailure().GetCause().GetTimeoutFailureInfo().GetTimeoutType()
			}
		default:
			continue
		}
		if i, ok := at[scheduled]; ok {
			out[i].closed = ev.GetEventType()
		}
	}
	return out
}

// payloads reads $STATE/payloads: what each run's builds wrote, by run.
func (c *cluster) payloads(t testing.TB) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.state, "payloads"))
	require.NoError(t, err, "the builds' payloads")
	out := map[string][]string{}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if run, _, ok := strings.Cut(line, " "); ok {
			out[run] = append(out[run], line)
		}
	}
	return out
}

// artifactBytes sums the kiln_artifact_bytes_total series of direction in
// a Prometheus text answer.
func artifactBytes(metrics, direction string) float64 {
	series := regexp.MustCompile(`(?m)^kiln_artifact_bytes_total\{([^}]*)\} (\S+)$`)
	sum := 0.0
	for _, m := range series.FindAllStringSubmatch(metrics, -1) {
		if strings.Contains(m[1], `direction="`+direction+`"`) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum
}

// getMetrics GETs the worker's /metrics.
func getMetrics(t testing.TB, w *worker) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(w.metrics)
	require.NoError(t, err, "GET %s of %s", w.metrics, w)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s of %s: %s", w.metrics, w, body)
	return string(body)
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
