package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/workflows"
)

// replayDir holds the replay corpus: histories of real Pipeline runs on the
// embedded Temporal server, one JSON file per scenario. Replaying them against
// today's workflow code is what makes a non-deterministic change (a reordered
// activity, a new timer, a removed signal) fail CI instead of breaking the runs
// in flight when a worker is upgraded. TestRecordReplayCorpus in
// record_test.go writes them; to re-record:
//
//	go test -tags record ./workflows -run TestRecordReplayCorpus -record
//
// Re-record only to add scenarios: once a release has shipped, its histories
// stay, because workers must keep replaying runs it started.
const replayDir = "testdata/replay"

// corpus lists each scenario in the corpus with the event its run ended on,
// so a history that was cut short or recorded from the wrong run is caught.
var corpus = map[string]enumspb.EventType{
	"success":      enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"build-failed": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
	"cancelled":    enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
	"superseded":   enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
	"superseding":  enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// A fork's pull request waits for approval: approved by kiln approve,
	// or rejected and completed as not approved.
	"approved":     enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"not-approved": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// The same, since each decision goes in the run's memo.
	"approved-memo":     enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"not-approved-memo": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// A fork's change to a pipeline that builds in an image: built at
	// once, without secrets; building only, it waits for nothing.
	"untrusted-built-in-image": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// Build, bake with Packer and test the AMI.
	"bake-test-passed": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"test-failed":      enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
	// Distribute with a denied target: retried by an operator, or not.
	"distribute-retried": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"distribute-expired": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
	// Build and publish an image, report, notify, and start the run the
	// image triggers; and that run.
	"publish-triggered": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"image-triggered":   enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// The same build and publish with an artifact store: the image is
	// published from the store's manifest, on the building worker's queue.
	"published-from-store": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// A pipeline's retention: list, plan, and delete two of three bakes.
	"retention-deleted": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// A copy whose target then points its SSM parameter and launch
	// template at it.
	"distribute-updated": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// kiln run's check before a start: a plan, and a refusal.
	"check-ok":      enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	"check-refused": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
}

// archived lists histories recorded by earlier workflow code, which runs in
// flight may still be on: they replay like the corpus, through the old branch
// of a workflow.GetVersion, but can no longer be recorded.
var archived = map[string]enumspb.EventType{
	// publish-triggered before image triggers were limited to the default
	// branch and tags, one run per dependent (image-triggers-from-release-refs).
	"publish-triggered-each-image": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// distribute-retried before copies waited for their cancellation
	// (copy-waits-for-cancel).
	"distribute-retried-before-cancel-wait": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	// superseding before plans, supersede queries, reports and
	// notifications got their own task queue (short-queue).
	"superseding-before-short-queue": enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
}

// TestReplayCorpus replays every recorded history with the current code.
func TestReplayCorpus(t *testing.T) {
	files := corpusFiles(t)
	if len(files) == 0 {
		t.Fatalf("no histories in %s: the replay test would prove nothing", replayDir)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			checkHistory(t, name, readHistory(t, filepath.Join(replayDir, name+".json")))
		})
	}
}

// TestReplayCorpusComplete fails when a scenario's history is missing, so
// deleting the corpus, or one file of it, cannot pass silently.
func TestReplayCorpusComplete(t *testing.T) {
	files := corpusFiles(t)
	for name := range corpus {
		if !slices.Contains(files, name) {
			t.Errorf("%s/%s.json is missing; record it (see replayDir)", replayDir, name)
		}
	}
	for name := range archived {
		if !slices.Contains(files, name) {
			t.Errorf("%s/%s.json is missing; restore it from git: it cannot be recorded again", replayDir, name)
		}
	}
}

// corpusFiles lists the corpus's scenario names: its file names without .json.
func corpusFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(replayDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return names
}

// readHistory parses a history in the JSON form of `temporal workflow show
// --output json` and client.GetWorkflowHistory marshalled with temporalproto.
func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(hist.GetEvents()) == 0 {
		t.Fatalf("%s has no events", path)
	}
	return hist
}

// checkHistory checks that hist ends the way its scenario should, and replays it.
func checkHistory(t *testing.T, name string, hist *historypb.History) {
	t.Helper()
	want, ok := corpus[name]
	if !ok {
		want, ok = archived[name]
	}
	if !ok {
		t.Fatalf("scenario %q is not listed in corpus or archived", name)
	}
	if last := hist.GetEvents()[len(hist.GetEvents())-1].GetEventType(); last != want {
		t.Fatalf("%s ends with %s, want %s", name, last, want)
	}
	replay(t, hist)
}

// replay runs hist through kiln's workflows as a worker would after a
// restart, registered under the names starters use.
func replay(t *testing.T, hist *historypb.History) {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.Pipeline, workflow.RegisterOptions{Name: workflows.PipelineWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.CheckRun, workflow.RegisterOptions{Name: workflows.CheckRunWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	if err := r.ReplayWorkflowHistory(quietLogger(), hist); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// quietLogger passes on the SDK's warnings and errors only.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
