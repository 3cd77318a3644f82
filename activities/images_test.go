package activities

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/cfn"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// imageRig is a git repository on main, an in-process registry (plain HTTP
// on loopback) that can be made slow, and a data dir for artifacts.
type imageRig struct {
	repo    string // the git repository's directory, its clone URL
	commits []string
	host    string
	a       *Activities
	slow    time.Duration // each base manifest GET waits this long
	mu      sync.Mutex
}

func newImageRig(t *testing.T) *imageRig {
	t.Helper()
	rig := &imageRig{repo: t.TempDir(), a: &Activities{DataDir: t.TempDir(), Log: zerolog.Nop()}}
	head, err := gitx.InitRepo(context.Background(), rig.repo, fstest.MapFS{"cfn/app.yaml": {Data: []byte("Resources: {}\n")}}, "first")
	require.NoError(t, err)
	rig.commits = append(rig.commits, head)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/acme/base/manifests/") {
			rig.mu.Lock()
			d := rig.slow
			rig.mu.Unlock()
			time.Sleep(d)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rig.host = strings.TrimPrefix(srv.URL, "http://")
	return rig
}

// commit adds a commit to main, moving the branch on.
func (rig *imageRig) commit(t *testing.T) string {
	t.Helper()
	sha, err := gitx.Commit(context.Background(), rig.repo, "another")
	require.NoError(t, err)
	rig.commits = append(rig.commits, sha)
	return sha
}

// input is a run of commit for ev whose build left app.txt holding content.
func (rig *imageRig) input(t *testing.T, runID, commit, content string, ev event.Event, img config.ImagePublish) ImageInput {
	t.Helper()
	dir := filepath.Join(rig.a.DataDir, "artifacts", safeName(runID))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.txt"), []byte(content), 0o644))
	if img.Name == "" {
		img.Name = rig.host + "/acme/app"
	}
	if img.Files == nil {
		img.Files = []config.ImageFile{{From: "app.txt", To: "/srv"}}
	}
	return ImageInput{RunID: runID, Pipeline: "app", Event: ev, Plan: Plan{
		Repo: "acme/app", CloneURL: rig.repo, Commit: commit,
		Publish: &config.PublishStage{Images: []config.ImagePublish{img}},
	}}
}

func (rig *imageRig) publish(t *testing.T, in ImageInput, opts ...worker.Options) (*ImageResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	for _, o := range opts {
		env.SetWorkerOptions(o)
	}
	env.RegisterActivity(rig.a)
	v, err := env.ExecuteActivity(rig.a.PublishImage, in)
	if err != nil {
		return nil, err
	}
	var res ImageResult
	require.NoError(t, v.Get(&res))
	return &res, nil
}

func (rig *imageRig) digestOf(t *testing.T, tag string) string {
	t.Helper()
	ref, err := name.NewTag(rig.host + "/acme/app:" + tag)
	require.NoError(t, err)
	desc, err := remote.Head(ref)
	require.NoError(t, err)
	return desc.Digest.String()
}

var mainPush = event.Event{Kind: event.KindBranch, Ref: "refs/heads/main", Branch: "main"}

// requirePermanent says err is a non-retryable application error of typ.
func requirePermanent(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	assert.Equal(t, typ, appErr.Type())
	assert.True(t, appErr.NonRetryable(), "%v", err)
	return appErr
}

// TestStaleBranchRunDoesNotRollBackTags: a run whose branch moved on while
// it waited (for a retry, say) pushes only its SHA tag; latest and main
// stay at the newer commit's image.
func TestStaleBranchRunDoesNotRollBackTags(t *testing.T) {
	rig := newImageRig(t)
	old := rig.commits[0]
	head := rig.commit(t)

	res, err := rig.publish(t, rig.input(t, "app/main/new", head, "new", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	assert.False(t, res.Stale)
	assert.Equal(t, []string{"main", "latest", head[:7]}, res.Tags)
	newDigest := res.Digest

	res, err = rig.publish(t, rig.input(t, "app/main/old", old, "old", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	assert.True(t, res.Stale)
	assert.Equal(t, []string{"main", "latest"}, res.Withheld)
	assert.Equal(t, []string{old[:7]}, res.Tags)
	assert.NotEqual(t, newDigest, res.Digest)
	assert.Equal(t, newDigest, rig.digestOf(t, "latest"), "latest not rolled back")
	assert.Equal(t, newDigest, rig.digestOf(t, "main"))
	assert.Equal(t, res.Digest, rig.digestOf(t, old[:7]), "the old commit still gets its SHA tag")

	// A run whose branch moved on to a commit that has not published
	// (a nightly run, say, while a push is still building) moves the
	// branch's tags: the newer run moves them on when it publishes.
	newer := rig.commit(t)
	res, err = rig.publish(t, rig.input(t, "app/main/nightly", head, "nightly", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	assert.False(t, res.Stale)
	assert.Empty(t, res.Withheld)
	assert.Equal(t, res.Digest, rig.digestOf(t, "latest"), "latest follows the newest published commit")
	res, err = rig.publish(t, rig.input(t, "app/main/newer", newer, "newer", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	assert.Equal(t, res.Digest, rig.digestOf(t, "latest"))

	// A deleted branch has no head to be: nothing moves either.
	gone := mainPush
	gone.Ref, gone.Branch = "refs/heads/gone", "gone"
	res, err = rig.publish(t, rig.input(t, "app/gone/1", head, "new", gone, config.ImagePublish{}))
	require.NoError(t, err)
	assert.True(t, res.Stale)
	assert.Equal(t, []string{"gone"}, res.Withheld)
}

// TestBranchHeadUnreachableIsRetried: without the remote kiln cannot tell
// whether the run is stale, and tries again later rather than guessing.
func TestBranchHeadUnreachableIsRetried(t *testing.T) {
	rig := newImageRig(t)
	in := rig.templatesInput(rig.commits[0])
	in.Plan.CloneURL = filepath.Join(t.TempDir(), "no-such-repo")
	_, err := rig.publishTemplates(t, in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "head of branch main")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	assert.False(t, appErr.NonRetryable(), "%v", err)
}

func (rig *imageRig) templatesInput(commit string) TemplatesInput {
	return TemplatesInput{RunID: "app/main/old", Pipeline: "app", Event: mainPush, Plan: Plan{
		Repo: "acme/app", CloneURL: rig.repo, Commit: commit,
		Publish: &config.PublishStage{CloudFormation: &config.CloudFormationPublish{
			Bucket: "templates", Region: "us-east-1", Templates: []string{"cfn/app.yaml"}}},
	}, AMIs: map[string]string{"us-east-1": "ami-0123456789abcdef0"}}
}

func (rig *imageRig) publishTemplates(t *testing.T, in TemplatesInput) (*TemplatesResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(rig.a)
	v, err := env.ExecuteActivity(rig.a.PublishTemplates, in)
	if err != nil {
		return nil, err
	}
	var res TemplatesResult
	require.NoError(t, v.Get(&res))
	return &res, nil
}

// TestStaleBranchRunSkipsTemplates: the templates under a branch's prefix
// carry their commit; an old run of the branch uploads none once the head's
// are there, and uploads when the head has not published yet.
func TestStaleBranchRunSkipsTemplates(t *testing.T) {
	moto := motoserver.Start(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := awsx.Config(context.Background(), "us-east-1")
	require.NoError(t, err)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	_, err = s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("templates")})
	require.NoError(t, err)
	publishedCommit := func() string {
		c, err := cfn.PublishedCommit(context.Background(), s3c, "templates", "main/cfn/app.yaml")
		require.NoError(t, err)
		return c
	}

	rig := newImageRig(t)
	old := rig.commits[0]
	head := rig.commit(t)
	res, err := rig.publishTemplates(t, rig.templatesInput(head))
	require.NoError(t, err)
	assert.Equal(t, []string{"s3://templates/main/cfn/app.yaml"}, res.Objects)
	assert.Equal(t, head, publishedCommit())

	res, err = rig.publishTemplates(t, rig.templatesInput(old))
	require.NoError(t, err)
	assert.True(t, res.Stale)
	assert.Empty(t, res.Objects)
	assert.Equal(t, head, publishedCommit(), "not rolled back")

	rig.commit(t) // a newer head that has not published: head's run may
	res, err = rig.publishTemplates(t, rig.templatesInput(head))
	require.NoError(t, err)
	assert.False(t, res.Stale)
	assert.Len(t, res.Objects, 1)
}

// TestBranchHead: only branch runs are checked, against the remote head.
func TestBranchHead(t *testing.T) {
	rig := newImageRig(t)
	ctx := context.Background()
	plan := Plan{CloneURL: rig.repo, Commit: rig.commits[0]}
	for _, c := range []struct {
		ev   event.Event
		want bool
	}{
		{mainPush, false},
		{event.Event{Kind: event.KindManual, Branch: "main"}, false},
		{event.Event{Kind: event.KindBranch, Branch: "other"}, true},
		{event.Event{Kind: event.KindTag, Tag: "v1.0.0"}, false},
		{event.Event{Kind: event.KindImage, Tag: "v1.0.0"}, false},
		{event.Event{Kind: event.KindReview, Branch: "other", PullRequest: &event.PullRequest{Number: 1}}, false},
	} {
		_, moved, err := branchHead(ctx, plan, c.ev)
		require.NoError(t, err)
		assert.Equal(t, c.want, moved, "%+v", c.ev)
	}
	next := rig.commit(t)
	head, moved, err := branchHead(ctx, plan, mainPush)
	require.NoError(t, err)
	assert.True(t, moved, "main moved on")
	assert.Equal(t, next, head)
}

// TestImageTriggeredTagRun: a run an image started on a tag ref follows
// the tag rules.
func TestImageTriggeredTagRun(t *testing.T) {
	rig := newImageRig(t)
	sha := rig.commits[0]
	ev := event.Event{Kind: event.KindImage, Ref: "refs/tags/v1.4.0", Tag: "v1.4.0",
		Image: &event.ImagePush{Name: "r.local/acme/base", Digest: "sha256:00"}}
	res, err := rig.publish(t, rig.input(t, "app/tag-v1.4.0/image-1", sha, "x", ev,
		config.ImagePublish{Tags: &config.TagRules{SemverMajor: true}}))
	require.NoError(t, err)
	assert.Equal(t, []string{"v1.4.0", "1", sha[:7]}, res.Tags)
	assert.False(t, res.Stale)
}

// TestReviewRunLeavesAnotherImagesSHATag: a pull request's commit does not
// move a short-SHA tag that is already taken; the run still succeeds.
func TestReviewRunLeavesAnotherImagesSHATag(t *testing.T) {
	rig := newImageRig(t)
	sha := rig.commits[0]
	res, err := rig.publish(t, rig.input(t, "app/main/1", sha, "release", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	release := res.Digest

	review := event.Event{Kind: event.KindReview, Ref: "refs/pull/5/head", Branch: "fork-branch",
		PullRequest: &event.PullRequest{Number: 5, Fork: true}}
	res, err = rig.publish(t, rig.input(t, "app/pr-5/1", sha, "fork", review, config.ImagePublish{}))
	require.NoError(t, err)
	assert.Equal(t, []string{"pr-5"}, res.Tags)
	assert.Equal(t, []string{sha[:7]}, res.Kept)
	assert.Equal(t, release, rig.digestOf(t, sha[:7]))
}

// TestWriteOnceConflictIsPermanent: a branch run whose SHA tag is another
// commit's image fails for good, naming the tag and both digests.
func TestWriteOnceConflictIsPermanent(t *testing.T) {
	rig := newImageRig(t)
	sha := rig.commits[0]
	res, err := rig.publish(t, rig.input(t, "app/main/1", sha, "one", mainPush, config.ImagePublish{}))
	require.NoError(t, err)
	// Another commit whose short SHA collides; it is not main's head, so
	// only its SHA tag is tried.
	other := sha[:7] + strings.Repeat("f", 33)
	_, err = rig.publish(t, rig.input(t, "app/main/2", other, "two", mainPush, config.ImagePublish{}))
	appErr := requirePermanent(t, err, ErrInvalidImage)
	assert.Contains(t, appErr.Error(), "/acme/app:"+sha[:7])
	assert.Contains(t, appErr.Error(), res.Digest)
	assert.Contains(t, appErr.Error(), "commit "+sha)
	assert.Equal(t, res.Digest, rig.digestOf(t, sha[:7]))
}

// TestBadFilesArePermanent: two rules writing one target cannot succeed on
// a retry.
func TestBadFilesArePermanent(t *testing.T) {
	rig := newImageRig(t)
	img := config.ImagePublish{Files: []config.ImageFile{{From: "app.txt", To: "/srv"}, {From: "*.txt", To: "/srv"}}}
	_, err := rig.publish(t, rig.input(t, "app/main/1", rig.commits[0], "x", mainPush, img))
	appErr := requirePermanent(t, err, ErrInvalidImage)
	assert.Contains(t, appErr.Error(), "both go to /srv/app.txt")
}

// beatCounter counts PublishImage's heartbeats by step.
type beatCounter struct {
	interceptor.WorkerInterceptorBase
	mu    sync.Mutex
	steps map[string]int
}

func (b *beatCounter) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &beatInbound{b: b}
	i.Next = next
	return i
}

func (b *beatCounter) count(step string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.steps[step]
}

type beatInbound struct {
	interceptor.ActivityInboundInterceptorBase
	b *beatCounter
}

func (i *beatInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	o := &beatOutbound{b: i.b}
	o.Next = outbound
	return i.Next.Init(o)
}

type beatOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	b *beatCounter
}

func (o *beatOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if len(details) == 1 {
		if p, ok := details[0].(imageProgress); ok {
			o.b.mu.Lock()
			o.b.steps[p.Step]++
			o.b.mu.Unlock()
		}
	}
	o.Next.RecordHeartbeat(ctx, details...)
}

// TestPublishImageHeartbeatsWhileBuilding: a build that takes longer than
// the heartbeat timeout (a slow base pull, gigabytes of artifacts to
// compress) still heartbeats, on the ticker.
func TestPublishImageHeartbeatsWhileBuilding(t *testing.T) {
	defer func(d time.Duration) { heartbeatEvery = d }(heartbeatEvery)
	heartbeatEvery = 10 * time.Millisecond
	rig := newImageRig(t)
	base, err := random.Image(256, 1)
	require.NoError(t, err)
	ref, err := name.NewTag(rig.host + "/acme/base:1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, base))
	rig.slow = 300 * time.Millisecond

	beats := &beatCounter{steps: map[string]int{}}
	in := rig.input(t, "app/main/1", rig.commits[0], "x", mainPush, config.ImagePublish{Base: rig.host + "/acme/base:1"})
	_, err = rig.publish(t, in, worker.Options{Interceptors: []interceptor.WorkerInterceptor{beats}})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, beats.count("build"), 10, "beats while the base is pulled and the layer built")
}

// TestWatchStall: a push that keeps moving is never cut; one that stops
// moving is cancelled with errPushStalled, which PublishImage retries.
func TestWatchStall(t *testing.T) {
	const d = time.Second
	ctx, moved, stop := watchStall(context.Background(), d)
	for range 20 { // 2 d of steady progress, a tenth of d apart
		time.Sleep(d / 10)
		moved()
	}
	require.NoError(t, ctx.Err(), "a moving push was cut")
	select {
	case <-ctx.Done():
	case <-time.After(10 * d):
		t.Fatal("a stalled push was never cut")
	}
	assert.ErrorIs(t, context.Cause(ctx), errPushStalled)
	stop()

	ctx, _, stop = watchStall(context.Background(), d)
	stop()
	assert.NotErrorIs(t, context.Cause(ctx), errPushStalled, "stop ends the watch without a stall")
}
