//go:build record

package workflows_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/test/testkit"
	kilnworker "github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// This file links the whole Temporal server, so it builds only with the record
// tag and normal `go test` stays fast. With the tag, TestRecordReplayCorpus runs
// every scenario against the embedded server and replays the fresh histories;
// -record also writes them over the committed corpus:
//
//	go test -tags record ./workflows -run TestRecordReplayCorpus -record
//
// Each group of scenarios is a subtest with its own server and worker, so a
// new group can be recorded without rewriting the histories already shipped:
//
//	go test -tags record ./workflows -run TestRecordReplayCorpus/ami -record

var record = flag.Bool("record", false, "write the recorded histories to "+replayDir)

// The recorder's pipelines: "replay" plain, "replay-supersede" cancelling the
// older run of a ref, so both paths of the workflow are in the corpus.
const (
	recPipeline          = "replay"
	recSupersedePipeline = "replay-supersede"
	recRepo              = "kiln-ci/replay"
)

// recBuildspec behaves by run ID, so one commit serves every scenario: IDs
// with "fail" exit 3, IDs with "slow" build until cancelled.
const recBuildspec = `version: 0.2
phases:
  build:
    commands:
      - echo "building $KILN_COMMIT for $KILN_RUN_ID"
      - case "$KILN_RUN_ID" in *fail*) exit 3 ;; esac
      - case "$KILN_RUN_ID" in *slow*) sleep 600 ;; esac
`

// recGroups are the corpus's scenarios by the subtest that records them.
// Together they list every scenario in corpus, each once.
var recGroups = []struct {
	name      string
	scenarios []string
	// run runs the group's scenarios and returns their workflow IDs by scenario.
	run func(t *testing.T) (*recorder, map[string]string)
}{
	{"build", []string{"success", "build-failed", "cancelled", "superseded", "superseding", "approved", "not-approved"}, recordBuildScenarios},
	{"ami", []string{"bake-test-passed", "test-failed"}, recordAMIScenarios},
	{"distribute", []string{"distribute-retried", "distribute-expired"}, recordDistributeScenarios},
	{"publish", []string{"publish-triggered", "image-triggered"}, recordPublishScenarios},
	{"artifact-store", []string{"published-from-store"}, recordArtifactStoreScenarios},
	{"retention", []string{"retention-deleted"}, recordRetentionScenarios},
	{"distribute-updates", []string{"distribute-updated"}, recordUpdateScenarios},
	{"check", []string{"check-ok", "check-refused"}, recordCheckScenarios},
	{"approval-memo", []string{"approved-memo", "not-approved-memo"}, recordApprovalMemoScenarios},
	{"untrusted-image", []string{"untrusted-built-in-image"}, recordUntrustedImageScenarios},
}

// recorder is an embedded server with a real kiln worker, building a real git
// repository.
type recorder struct {
	t      *testing.T
	c      client.Client
	commit string
}

// recFixture is what a recorder's worker works on: the files of its
// repository's one commit and the kiln.yaml for the repository's clone URL.
type recFixture struct {
	files  fstest.MapFS
	config func(cloneURL string) *config.Config
	// packer is the worker's PackerBinary; empty for pipelines that do not bake.
	packer string
	// containers is the worker's BuildKit, for builds in an image.
	containers *testkit.Containers
	// artifacts gives the worker an artifact store in a directory.
	artifacts bool
}

// TestRecordReplayCorpus runs one real pipeline run per corpus scenario, checks
// each ended as its scenario says, then saves and replays its history. The
// runs build a real git repository with the real activities, so the histories
// carry exactly the payloads production records.
func TestRecordReplayCorpus(t *testing.T) {
	listed := map[string]bool{}
	for _, g := range recGroups {
		for _, name := range g.scenarios {
			if _, ok := corpus[name]; !ok || listed[name] {
				t.Fatalf("group %s: scenario %q is not in corpus, or is in another group too", g.name, name)
			}
			listed[name] = true
		}
	}
	if len(listed) != len(corpus) {
		t.Fatalf("the groups record %d scenarios, corpus lists %d", len(listed), len(corpus))
	}
	for _, g := range recGroups {
		t.Run(g.name, func(t *testing.T) {
			r, runs := g.run(t)
			r.saveAll(runs, g.scenarios)
		})
	}
}

// recordBuildScenarios records the runs of build-only pipelines: success, a
// failed build, a cancelled run, and one run superseding another.
func recordBuildScenarios(t *testing.T) (*recorder, map[string]string) {
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{
			"buildspec.yml": {Data: []byte(recBuildspec)},
			"README.md":     {Data: []byte("kiln replay corpus fixture\n")},
		},
		config: recConfig,
	})
	ctx := t.Context()
	runs := map[string]string{} // scenario -> workflow ID

	runs["success"] = r.start(recPipeline, "success")
	r.wait(runs["success"], nil)

	runs["build-failed"] = r.start(recPipeline, "build-fail")
	var appErr *temporal.ApplicationError
	if err := r.wait(runs["build-failed"], &appErr); appErr.Type() != activities.ErrBuildFailed {
		t.Fatalf("build-failed ended with %v", err)
	}

	runs["cancelled"] = r.start(recPipeline, "cancel-slow")
	r.waitBuilding(runs["cancelled"])
	if err := r.c.CancelWorkflow(ctx, runs["cancelled"], ""); err != nil {
		t.Fatal(err)
	}
	r.wantCancelled(runs["cancelled"], "cancelled")

	runs["superseded"] = r.start(recSupersedePipeline, "older-slow")
	r.waitBuilding(runs["superseded"])
	r.waitVisible(runs["superseded"])
	runs["superseding"] = r.start(recSupersedePipeline, "newer")
	r.wait(runs["superseding"], nil)
	r.wantCancelled(runs["superseded"], "superseded by "+runs["superseding"])

	r.approveAndReject(runs, "approved", "not-approved", 7)
	return r, runs
}

// approveAndReject records the fork's pull request number approved with
// kiln approve as scenario approved, and number+1 rejected by a comment as
// rejected.
func (r *recorder) approveAndReject(runs map[string]string, approved, rejected string, number int) {
	runs[approved] = r.startFork(recPipeline, number, "fork-"+approved)
	r.decide(runs[approved], workflows.UpdateApprove, workflows.Decision{By: "maintainer", Via: workflows.ViaCLI})
	r.wait(runs[approved], nil)
	runs[rejected] = r.startFork(recPipeline, number+1, "fork-"+rejected)
	r.decide(runs[rejected], workflows.UpdateReject, workflows.Decision{By: "maintainer", Via: workflows.ViaComment, Reason: "not this"})
	r.wait(runs[rejected], nil)
}

// recordApprovalMemoScenarios records fork runs approved and rejected since
// their decisions go in the run's memo.
func recordApprovalMemoScenarios(t *testing.T) (*recorder, map[string]string) {
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{
			"buildspec.yml": {Data: []byte(recBuildspec)},
			"README.md":     {Data: []byte("kiln replay corpus fixture\n")},
		},
		config: recConfig,
	})
	runs := map[string]string{}
	r.approveAndReject(runs, "approved-memo", "not-approved-memo", 9)
	return r, runs
}

// recordUntrustedImageScenarios records a fork's pull request to a
// pipeline that builds in an image: it builds at once, without secrets,
// and, building only, needs no approval. It needs root and BuildKit.
func recordUntrustedImageScenarios(t *testing.T) (*recorder, map[string]string) {
	ctrs := testkit.RequireContainers(t)
	r := newRecorder(t, recFixture{
		files:      fstest.MapFS{"README.md": {Data: []byte("kiln replay corpus fixture\n")}},
		containers: ctrs,
		config: func(cloneURL string) *config.Config {
			cfg := recConfig(cloneURL)
			cfg.Pipelines[0].Stages.Build = &config.BuildStage{Timeout: config.Duration(5 * time.Minute),
				Environment: &config.BuildEnvironment{Image: ctrs.BusyboxTag},
				Buildspec:   config.BuildspecSource{Inline: "version: 0.2\nphases:\n  build:\n    commands: [\"echo untrusted\"]\n"}}
			return cfg
		},
	})
	runs := map[string]string{"untrusted-built-in-image": r.startFork(recPipeline, 11, "fork-in-image")}
	r.wait(runs["untrusted-built-in-image"], nil)
	return r, runs
}

// recordCheckScenarios records what kiln run asks before it starts a run:
// a check that plans, and one refused for a pipeline that does not exist.
func recordCheckScenarios(t *testing.T) (*recorder, map[string]string) {
	r := newRecorder(t, recFixture{
		files:  fstest.MapFS{"README.md": {Data: []byte("kiln replay corpus fixture\n")}},
		config: recConfig,
	})
	check := func(id, pipeline string) string {
		ev := event.Event{Kind: event.KindManual}
		ev.FromRef("main")
		_, err := r.c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
			workflows.CheckRunWorkflowName, activities.PlanInput{Pipeline: pipeline, Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	runs := map[string]string{"check-ok": check("kiln-check/replay/ok", recPipeline)}
	r.wait(runs["check-ok"], nil)
	runs["check-refused"] = check("kiln-check/nope/refused", "nope")
	var appErr *temporal.ApplicationError
	if err := r.wait(runs["check-refused"], &appErr); appErr.Type() != activities.ErrUnknownPipeline {
		t.Fatalf("check-refused ended with %v", err)
	}
	return r, runs
}

// startFork starts a review run of a pull request from a fork, which waits
// for approval before it builds.
func (r *recorder) startFork(pipeline string, number int, delivery string) string {
	ev := event.Event{Kind: event.KindReview, Repo: recRepo, Ref: fmt.Sprintf("refs/pull/%d/head", number), Branch: "feature",
		Commit: r.commit, DeliveryID: delivery, Sender: "outsider", Message: "from a fork",
		PullRequest: &event.PullRequest{Number: number, SourceBranch: "feature", TargetBranch: "main",
			SourceCommit: r.commit, Fork: true, Author: "outsider", AuthorAssociation: "CONTRIBUTOR"}}
	return r.startEvent(pipeline, ev)
}

// decide sends the update once the run waits for it.
func (r *recorder) decide(id, update string, d workflows.Decision) {
	deadline := time.Now().Add(time.Minute)
	for {
		h, err := r.c.UpdateWorkflow(r.t.Context(), client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: update, Args: []any{d}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(r.t.Context(), nil)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s %s: %v", update, id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// saveAll saves the history of each run, checks it and replays it. Only with
// -record do the files land in the corpus.
func (r *recorder) saveAll(runs map[string]string, scenarios []string) {
	t := r.t
	if len(runs) != len(scenarios) {
		t.Fatalf("recorded %d scenarios, want %d: %v", len(runs), len(scenarios), scenarios)
	}
	dir := t.TempDir()
	if *record {
		dir = replayDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range scenarios {
		id, ok := runs[name]
		if !ok {
			t.Fatalf("scenario %s was not recorded", name)
		}
		path := filepath.Join(dir, name+".json")
		r.save(id, path)
		checkHistory(t, name, readHistory(t, path))
		t.Logf("%s: %s", id, path)
	}
}

func newRecorder(t *testing.T, fx recFixture) *recorder {
	ctx := t.Context()
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		FrontendPort: ports[0], SearchAttributes: workflows.SearchAttributes(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	// A fixed identity keeps the recording machine's host name out of the corpus.
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Identity: "kiln-recorder", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	repoDir := filepath.Join(t.TempDir(), "replay.git")
	commit, err := gitx.InitRepo(ctx, repoDir, fx.files, "replay fixture")
	if err != nil {
		t.Fatal(err)
	}
	opts := kilnworker.Options{Config: fx.config(repoDir), DataDir: t.TempDir(), PackerBinary: fx.packer, Log: zerolog.Nop()}
	if fx.containers != nil {
		bk, err := buildkit.Dial(ctx, fx.containers.Daemon.Address)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bk.Close() })
		opts.Containers = bk
	}
	if fx.artifacts {
		opts.Artifacts = artifacts.Dir{Root: t.TempDir()}
	}
	w := kilnworker.New(c, opts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &recorder{t: t, c: c, commit: commit}
}

// recConfig is the worker's kiln.yaml, built in code: two pipelines on main
// of the fixture repository.
func recConfig(cloneURL string) *config.Config {
	supersede := true
	build := &config.BuildStage{Buildspec: config.BuildspecSource{Path: "buildspec.yml"}, Timeout: config.Duration(5 * time.Minute)}
	pipeline := func(name string, cancel *bool) config.Pipeline {
		return config.Pipeline{Name: name, Repo: recRepo, CancelSuperseded: cancel,
			Triggers: config.Triggers{Branch: []string{"main"}}, Stages: config.Stages{Build: build}}
	}
	return &config.Config{
		File:      "kiln.yaml (replay recorder)",
		Repos:     []config.Repo{{Name: recRepo, CloneURL: cloneURL}},
		Pipelines: []config.Pipeline{pipeline(recPipeline, nil), pipeline(recSupersedePipeline, &supersede)},
	}
}

// start starts a run for a push to main, the way the webhook intake does.
func (r *recorder) start(pipeline, delivery string) string {
	return r.startEvent(pipeline, event.Event{Kind: event.KindBranch, Repo: recRepo, Ref: "refs/heads/main", Branch: "main",
		Commit: r.commit, DeliveryID: delivery, Sender: "kiln", Message: "replay fixture"})
}

// startEvent starts a run for ev, the way the webhook intake does.
func (r *recorder) startEvent(pipeline string, ev event.Event) string {
	id := workflows.RunID(pipeline, ev, ev.DeliveryID)
	_, err := r.c.ExecuteWorkflow(r.t.Context(), client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue, TypedSearchAttributes: workflows.StartAttributes(pipeline, ev),
	}, workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: pipeline, Event: ev})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// wait waits for the run to end. With target nil the run must succeed;
// otherwise its error must match target, as with errors.As.
func (r *recorder) wait(id string, target any) error {
	ctx, cancel := context.WithTimeout(r.t.Context(), 2*time.Minute)
	defer cancel()
	err := r.c.GetWorkflow(ctx, id, "").Get(ctx, nil)
	switch {
	case target == nil && err != nil:
		r.t.Fatalf("%s: %v", id, err)
	case target != nil && !errors.As(err, target):
		r.t.Fatalf("%s ended with %v, want a %T", id, err, target)
	}
	return err
}

// wantCancelled waits for the run to end cancelled with the given details.
func (r *recorder) wantCancelled(id, details string) {
	var cancelled *temporal.CanceledError
	r.wait(id, &cancelled)
	var got string
	if err := cancelled.Details(&got); err != nil || got != details {
		r.t.Fatalf("%s cancelled with %q (%v), want %q", id, got, err, details)
	}
}

// waitBuilding waits until a worker has picked up the run's build, so the
// cancellation that follows interrupts a running build.
func (r *recorder) waitBuilding(id string) {
	r.poll(id+" building", func(ctx context.Context) (bool, error) {
		d, err := r.c.DescribeWorkflowExecution(ctx, id, "")
		for _, a := range d.GetPendingActivities() {
			if a.GetActivityType().GetName() == "Build" && a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				return true, nil
			}
		}
		return false, err
	})
}

// waitVisible waits until the visibility store lists the run as running, as
// FindSuperseded will ask it to.
func (r *recorder) waitVisible(id string) {
	q := activities.SupersedeQuery{PipelineAttr: workflows.AttrPipeline.GetName(), RefAttr: workflows.AttrRef.GetName(),
		Pipeline: recSupersedePipeline, Ref: "main", StartedAt: time.Now().Add(time.Hour), WorkflowID: "none"}
	finder := &activities.Activities{Runs: r.c}
	r.poll(id+" visible", func(ctx context.Context) (bool, error) {
		ids, err := finder.FindSuperseded(ctx, q)
		return len(ids) == 1 && ids[0] == id, err
	})
}

func (r *recorder) poll(what string, done func(context.Context) (bool, error)) {
	ctx, cancel := context.WithTimeout(r.t.Context(), time.Minute)
	defer cancel()
	for {
		ok, err := done(ctx)
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("waiting for %s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// save writes the run's full history to path as indented JSON.
func (r *recorder) save(id, path string) {
	hist := &historypb.History{}
	iter := r.c.GetWorkflowHistory(r.t.Context(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			r.t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		r.t.Fatal(err)
	}
}
