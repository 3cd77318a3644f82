package activities

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// EventEnv is the environment a build sees about its event: kiln's own KILN_*
// variables, the FLOW_* names of codecommit-flow-ci, and the CODEBUILD_* names
// buildspecs already use. Everything a webhook sent (ref names, titles, commit
// messages) reaches the build here and only here, as values, never as script.
func EventEnv(in BuildInput) []string {
	ev := in.Event
	env := []string{
		"CI=true",
		"KILN=true",
		"KILN_PIPELINE=" + in.Pipeline,
		"KILN_REPO=" + in.Plan.Repo,
		"KILN_COMMIT=" + in.Plan.Commit,
		"KILN_REF=" + ev.Ref,
		"KILN_REF_NAME=" + ev.RefLabel(),
		"KILN_EVENT=" + string(ev.Kind),
		"KILN_RUN_ID=" + in.RunID,
		"KILN_SENDER=" + ev.Sender,
		"KILN_COMMIT_MESSAGE=" + ev.Message,
		"CODEBUILD_BUILD_ID=" + in.RunID,
		"CODEBUILD_INITIATOR=kiln/" + in.Pipeline,
		"CODEBUILD_RESOLVED_SOURCE_VERSION=" + in.Plan.Commit,
		"CODEBUILD_SOURCE_VERSION=" + in.Plan.Commit,
		"CODEBUILD_SOURCE_REPO_URL=" + gitx.StripCredentials(in.Plan.CloneURL),
	}
	switch ev.Kind {
	case event.KindBranch:
		env = append(env, "FLOW_BRANCH="+ev.Branch, "CODEBUILD_WEBHOOK_TRIGGER=branch/"+ev.Branch)
	case event.KindTag:
		env = append(env, "FLOW_TAG="+ev.Tag, "CODEBUILD_WEBHOOK_TRIGGER=tag/"+ev.Tag)
	case event.KindReview:
		if pr := ev.PullRequest; pr != nil {
			n := strconv.Itoa(pr.Number)
			env = append(env,
				"FLOW_PULL_REQUEST_ID="+n,
				"FLOW_PULL_REQUEST_SRC_COMMIT="+pr.SourceCommit,
				"FLOW_PULL_REQUEST_DST_COMMIT="+pr.TargetCommit,
				"KILN_PR_NUMBER="+n,
				"KILN_PR_TITLE="+pr.Title,
				"KILN_PR_SOURCE_BRANCH="+pr.SourceBranch,
				"KILN_PR_TARGET_BRANCH="+pr.TargetBranch,
				"CODEBUILD_WEBHOOK_TRIGGER=pr/"+n,
			)
		}
	case event.KindSchedule:
		at := in.ScheduledAt
		if at.IsZero() {
			at = time.Now()
		}
		env = append(env, "FLOW_SCHEDULE="+at.UTC().Format(time.RFC3339), "KILN_SCHEDULE="+ev.Schedule)
		if ev.Branch != "" {
			env = append(env, "FLOW_BRANCH="+ev.Branch)
		}
	case event.KindImage:
		if ev.Branch != "" {
			env = append(env, "FLOW_BRANCH="+ev.Branch)
		}
		if img := ev.Image; img != nil {
			env = append(env,
				"KILN_TRIGGER_IMAGE="+img.Name,
				"KILN_TRIGGER_IMAGE_DIGEST="+img.Digest,
				"KILN_TRIGGER_PIPELINE="+img.Pipeline,
				"KILN_TRIGGER_RUN_ID="+img.RunID,
			)
		}
	case event.KindAMI:
		if ev.Branch != "" {
			env = append(env, "FLOW_BRANCH="+ev.Branch)
		}
		if pass := ev.AMI; pass != nil {
			env = append(env,
				"KILN_TRIGGER_PIPELINE="+pass.Pipeline,
				"KILN_TRIGGER_RUN_ID="+pass.RunID,
				"KILN_BASE_AMI="+pass.In(bakeRegion(in.Plan)),
				"KILN_BASE_AMI_COMMIT="+pass.Commit,
			)
			for _, region := range slices.Sorted(maps.Keys(pass.AMIs)) {
				env = append(env, "KILN_BASE_AMI_"+envRegion(region)+"="+pass.AMIs[region])
			}
		}
	case event.KindManual:
		if ev.Branch != "" {
			env = append(env, "FLOW_BRANCH="+ev.Branch)
		}
		if ev.Tag != "" {
			env = append(env, "FLOW_TAG="+ev.Tag)
		}
	}
	return env
}

// bakeRegion is where the plan bakes; empty without a bake stage.
func bakeRegion(p Plan) string {
	if p.Bake == nil {
		return ""
	}
	return p.Bake.Region
}

// envRegion spells a region as an environment variable's suffix:
// us-east-1 becomes US_EAST_1.
func envRegion(region string) string {
	return strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
}
