// Package bench measures how fast kiln turns a webhook into a durable workflow
// start, against a bare SDK StartWorkflow on the same embedded server. Numbers
// go to docs/benchmarks.md; nothing here is a timed pass/fail test.
//
//	go test ./test/bench -run '^$' -bench . -benchtime 2000x
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/starter/github"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

const secret = "bench-secret"

// rig is one embedded server with a webhook endpoint and a stub worker whose
// Pipeline workflow returns at once, so the numbers are intake plus Temporal,
// not builds.
type rig struct {
	srv  *devserver.Server
	c    client.Client
	w    sdkworker.Worker
	hook *httptest.Server
	seq  atomic.Int64
}

func newRig(b testing.TB, dynamic map[string]any) *rig {
	b.Helper()
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		b.Fatal(err)
	}
	// A SQLite file, as kiln dev uses, not the in-memory database.
	srv, err := devserver.Start(context.Background(), devserver.Options{
		DataDir: b.TempDir(), FrontendPort: ports[0], SearchAttributes: workflows.SearchAttributes(),
		Log: zerolog.Nop(), DynamicConfig: dynamic,
	})
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		b.Fatal(err)
	}
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.PipelineInput) error { return nil },
		workflow.RegisterOptions{Name: workflows.PipelineWorkflowName})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse("bench.yaml", []byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	secrets := map[string][]byte{"bench/repo": []byte(secret)}
	h := github.NewHandler(cfg, secrets, &starter.Runs{Client: c}, zerolog.Nop())
	r := &rig{srv: srv, c: c, w: w, hook: httptest.NewServer(h)}
	b.Cleanup(func() { r.hook.Close(); w.Stop(); c.Close(); srv.Stop() })
	return r
}

const benchConfig = `
repos:
  - name: bench/repo
    clone_url: /nonexistent
    webhook_secret: {env: UNUSED}
pipelines:
  - name: bench
    repo: bench/repo
    triggers: {branch: [main]}
    stages: {build: {buildspec: buildspec.yml}}
`

// webhook sends one signed push and returns when kiln has answered, which is
// when the start is durable in Temporal.
func (r *rig) webhook() (string, error) {
	n := r.seq.Add(1)
	body := fmt.Appendf(nil, `{"ref":"refs/heads/main","before":"%040d","after":"%040x","repository":{"full_name":"bench/repo"},"sender":{"login":"b"},"head_commit":{"message":"m"}}`, n, n)
	req, err := testkit.GitHubDelivery(r.hook.URL, secret, "push", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n), body)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("webhook answered %s", resp.Status)
	}
	return req.Header.Get("X-GitHub-Delivery"), nil
}

// sdkStart is the baseline: the same start kiln makes, without HTTP, signature
// check or payload parsing.
func (r *rig) sdkStart() (client.WorkflowRun, error) {
	id := fmt.Sprintf("bench/main/sdk-%d-%d", time.Now().UnixNano(), r.seq.Add(1))
	return r.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: "bench"})
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) pct(p float64) float64 {
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	if len(l.d) == 0 {
		return 0
	}
	return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000
}
