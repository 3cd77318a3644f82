package workflows_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// publishPlan builds and publishes two images; the app pipeline's trigger
// names the first.
func publishPlan() activities.Plan {
	p := testPlan()
	p.Publish = &config.PublishStage{Images: []config.ImagePublish{
		{Name: "r.local/acme/base", Files: []config.ImageFile{{From: "**", To: "/"}}},
		{Name: "r.local/acme/tools", Files: []config.ImageFile{{From: "**", To: "/"}}},
	}}
	p.Dependents = []activities.Dependent{{Image: "r.local/acme/base", Pipeline: "app"}}
	p.DefaultBranch = "main"
	return p
}

// onPlanWithChildren answers the plan activity with plan for this run, and
// records and stops at once every run of the "app" pipeline it starts.
func (s *pipelineSuite) onPlanWithChildren(plan *activities.Plan) *[]activities.PlanInput {
	var children []activities.PlanInput
	s.env.OnActivity(acts.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (*activities.Plan, error) {
			if in.Pipeline == "app" {
				children = append(children, in)
				return nil, temporal.NewNonRetryableApplicationError("stop here", activities.ErrUnknownPipeline, nil)
			}
			return plan, nil
		})
	return &children
}

// TestPublishTriggersDependents: each image is pushed; the dependent
// pipeline starts once, on HEAD, with the image and its digest, as a child
// run whose ID carries the digest (a second start of that ID is refused:
// test/publish shows publishing again triggers nothing).
func (s *pipelineSuite) TestPublishTriggersDependents() {
	// The child run is the real workflow; its plan ends it at once, and
	// tells what it was started with.
	plan := publishPlan()
	children := s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
			name := in.Plan.Publish.Images[in.Index].Name
			return &activities.ImageResult{Name: name, Digest: "sha256:0123456789abcdef0123", Tags: []string{"main"}}, nil
		}).Times(2)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Publish)
	s.Len(res.Publish.Images, 2)
	s.Equal([]string{"app/HEAD/image-0123456789ab"}, res.Publish.Triggered)
	s.Require().Len(*children, 1, "the child run started")
	child := (*children)[0]
	s.Equal(event.KindImage, child.Event.Kind)
	s.Equal("HEAD", child.Event.Ref)
	s.Equal(&event.ImagePush{Name: "r.local/acme/base", Digest: "sha256:0123456789abcdef0123",
		Pipeline: testPipeline, RunID: testRunID}, child.Event.Image)
}

// TestOnlyReleaseRefsTrigger: images from a pull request or a feature branch
// are pushed but start no dependent run: an unreviewed change must not
// become the base of the dependents' production builds.
func (s *pipelineSuite) TestOnlyReleaseRefsTrigger() {
	for name, ev := range map[string]event.Event{
		"review": {Kind: event.KindReview, Repo: pushEvent.Repo, Ref: "refs/pull/7/head", Commit: pushEvent.Commit,
			PullRequest: &event.PullRequest{Number: 7}},
		"feature branch": {Kind: event.KindBranch, Repo: pushEvent.Repo, Ref: "refs/heads/wip", Branch: "wip",
			Commit: pushEvent.Commit},
	} {
		s.Run(name, func() {
			s.SetupTest()
			plan := publishPlan()
			children := s.onPlanWithChildren(&plan)
			s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
			s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
				&activities.ImageResult{Name: "r.local/acme/base", Digest: "sha256:0123456789abcdef0123", Tags: []string{"0123456"}}, nil)

			s.run(ev)

			s.Require().NoError(s.env.GetWorkflowError())
			var res workflows.PipelineResult
			s.Require().NoError(s.env.GetWorkflowResult(&res))
			s.Require().NotNil(res.Publish)
			s.NotEmpty(res.Publish.Images, "the images are still pushed")
			s.Empty(res.Publish.Triggered)
			s.Empty(*children, "no dependent run started")
		})
	}
}

// TestStaleImageTriggersNothing: an image pushed by a run whose branch had
// moved on (only its commit's tags went up), or one no tag points at, starts
// no dependent.
func (s *pipelineSuite) TestStaleImageTriggersNothing() {
	plan := publishPlan()
	plan.Dependents = append(plan.Dependents, activities.Dependent{Image: "r.local/acme/tools", Pipeline: "app"})
	children := s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
			if in.Index == 0 {
				return &activities.ImageResult{Name: in.Plan.Publish.Images[in.Index].Name, Digest: "sha256:0123456789abcdef0123",
					Tags: []string{"0123456"}, Stale: true, Withheld: []string{"main", "latest"}}, nil
			}
			// Not stale, but every tag was kept on another image: nothing
			// points at this digest.
			return &activities.ImageResult{Name: in.Plan.Publish.Images[in.Index].Name, Digest: "sha256:fedcba9876543210",
				Tags: []string{}, Kept: []string{"0123456"}}, nil
		}).Times(2)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Empty(res.Publish.Triggered)
	s.Empty(*children)
}

// TestOneDependentRunForSeveralImages: a pipeline triggered by two images
// that one run pushes starts once, with an ID from both digests.
func (s *pipelineSuite) TestOneDependentRunForSeveralImages() {
	plan := publishPlan()
	plan.Dependents = append(plan.Dependents, activities.Dependent{Image: "r.local/acme/tools", Pipeline: "app"})
	children := s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
			name := in.Plan.Publish.Images[in.Index].Name
			return &activities.ImageResult{Name: name, Digest: "sha256:" + name[len(name)-4:] + "0123456789abcdef",
				Tags: []string{"main"}}, nil
		}).Times(2)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().Len(res.Publish.Triggered, 1)
	s.Regexp(`^app/HEAD/image-[0-9a-f]{12}$`, res.Publish.Triggered[0])
	s.NotContains(res.Publish.Triggered[0], "base0123", "the ID is not the first image's digest alone")
	s.Require().Len(*children, 1, "one run for both images")
	s.Equal("r.local/acme/base", (*children)[0].Event.Image.Name)
}

// TestPublishFailureFailsStage: a registry refusal is not retried and
// fails the publish stage.
func (s *pipelineSuite) TestPublishFailureFailsStage() {
	plan := publishPlan()
	plan.Publish.Images = plan.Publish.Images[:1]
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("push r.local/acme/base: unauthorized", activities.ErrRegistryRefused, nil))

	s.run(pushEvent)

	s.Error(s.env.GetWorkflowError())
	s.env.AssertActivityNumberOfCalls(s.T(), "PublishImage", 1)
	p := s.progressAny()
	s.Equal(workflows.StagePublish, p.Stages[len(p.Stages)-1].Name)
	s.Equal(workflows.StateFailed, p.Stages[len(p.Stages)-1].State)
	s.Equal("push r.local/acme/base: unauthorized", p.Stages[len(p.Stages)-1].Error)
}

// TestImagesBuildWhereTheArtifactsAre: the image is built on the task queue
// of the worker whose disk holds the build's artifacts.
func (s *pipelineSuite) TestImagesBuildWhereTheArtifactsAre() {
	plan := publishPlan()
	plan.Publish.Images, plan.Dependents = plan.Publish.Images[:1], nil
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(
		&activities.BuildResult{ArtifactsQueue: "kiln-host/builder-7/abc"}, nil).Once()
	var queue string
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
			queue = activity.GetInfo(ctx).TaskQueue
			return &activities.ImageResult{Name: "r.local/acme/base", Digest: "sha256:ab"}, nil
		}).Once()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal("kiln-host/builder-7/abc", queue)
}

// TestImagesFromTheArtifactStore: with the artifacts in the store, the
// building worker gets the first chance, for a minute; when it does not
// take the task (it died, or is busy), any worker publishes the image from
// the store, without a rebuild.
func (s *pipelineSuite) TestImagesFromTheArtifactStore() {
	const manifest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, alive := range []bool{true, false} {
		s.Run(fmt.Sprintf("building worker alive: %v", alive), func() {
			s.SetupTest()
			plan := publishPlan()
			plan.Publish.Images, plan.Dependents = plan.Publish.Images[:1], nil
			s.onPlan(plan, nil)
			s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(
				&activities.BuildResult{ArtifactsQueue: "kiln-host/builder-7/abc", ArtifactsManifest: manifest}, nil).Once()
			type call struct {
				queue, artifacts string
			}
			var calls []call
			s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
				func(ctx context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
					info := activity.GetInfo(ctx)
					calls = append(calls, call{info.TaskQueue, string(in.Artifacts)})
					if !alive && info.TaskQueue == "kiln-host/builder-7/abc" {
						return nil, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
					}
					return &activities.ImageResult{Name: "r.local/acme/base", Digest: "sha256:ab"}, nil
				})

			s.run(pushEvent)

			s.Require().NoError(s.env.GetWorkflowError())
			want := []call{{"kiln-host/builder-7/abc", manifest}}
			if !alive {
				want = append(want, call{"kiln", manifest})
			}
			s.Equal(want, calls)
			s.env.AssertActivityNumberOfCalls(s.T(), "Build", 1)
			var res workflows.PipelineResult
			s.Require().NoError(s.env.GetWorkflowResult(&res))
			s.Require().Len(res.Publish.Images, 1)
			s.Equal("sha256:ab", res.Publish.Images[0].Digest)
		})
	}
}

// TestImageTimeout: an image's timeout bounds its publish attempt, so a
// Dockerfile build longer than a push is not cut at the default 30m.
func (s *pipelineSuite) TestImageTimeout() {
	plan := publishPlan()
	plan.Dependents = nil
	plan.Publish.Images[1].Timeout = config.Duration(2 * time.Hour)
	s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	budget := map[string]time.Duration{}
	s.env.OnActivity(acts.PublishImage, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ImageInput) (*activities.ImageResult, error) {
			info := activity.GetInfo(ctx)
			name := in.Plan.Publish.Images[in.Index].Name
			budget[name] = info.Deadline.Sub(info.StartedTime).Round(time.Minute)
			return &activities.ImageResult{Name: name, Digest: "sha256:0123456789abcdef0123"}, nil
		}).Times(2)
	s.run(pushEvent)
	s.NoError(s.env.GetWorkflowError())
	s.Equal(map[string]time.Duration{"r.local/acme/base": 30 * time.Minute, "r.local/acme/tools": 2 * time.Hour}, budget)
}
