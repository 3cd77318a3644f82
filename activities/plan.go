package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// PlanInput asks for the definition of a run.
type PlanInput struct {
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
}

// Plan is a run's definition, snapshotted from config when the run starts.
// Only configured stages are set.
type Plan struct {
	Repo     string `json:"repo"`
	CloneURL string `json:"clone_url"`
	// CloneAuth says where the clone credentials are read, on the worker;
	// the token itself is never in the plan.
	CloneAuth *config.CloneAuth `json:"clone_auth,omitempty"`
	Commit    string            `json:"commit"`
	// Untrusted says why the run must be approved before it builds (a
	// pull request from a fork, or by an author the repository does not
	// trust); empty when it need not. ApprovalTimeout is how long it waits.
	Untrusted       string        `json:"untrusted,omitempty"`
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// Branch is the default branch's name when the event named HEAD (an
	// image trigger without a ref).
	Branch           string             `json:"branch,omitempty"`
	CancelSuperseded bool               `json:"cancel_superseded"`
	Build            *config.BuildStage `json:"build,omitempty"`
	// BuildImage is stages.build.environment.image pinned by digest when
	// the run started, "<repository>@sha256:…": every attempt of the build
	// runs in this image. Empty for a build on the worker.
	BuildImage string            `json:"build_image,omitempty"`
	Bake       *config.BakeStage `json:"bake,omitempty"`
	Test       *config.TestStage `json:"test,omitempty"`
	// Distribute is only set together with Bake, which makes its source AMI.
	Distribute *config.DistributeStage `json:"distribute,omitempty"`
	Publish    *config.PublishStage    `json:"publish,omitempty"`
	// Dependents are the pipelines that a new push of one of this
	// pipeline's images starts.
	Dependents []Dependent `json:"dependents,omitempty"`
	// AMIDependents are the pipelines that an AMI of this pipeline starts
	// once it passes its test.
	AMIDependents []AMIDependent `json:"ami_dependents,omitempty"`
	// DefaultBranch is the repository's default branch, looked up only for
	// a run on a branch whose pipeline has dependents: only images from it
	// (or from a tag) trigger them.
	DefaultBranch string `json:"default_branch,omitempty"`
	// Report and Notify say how the run is reported and who hears of it.
	Report *config.Report `json:"report,omitempty"`
	Notify *config.Notify `json:"notify,omitempty"`
	// CodeCommit is set for an AWS CodeCommit repository.
	CodeCommit *config.CodeCommitRepo `json:"codecommit,omitempty"`
	// UI is the Temporal Web UI's base URL as the worker knows it, for the
	// link a run gives to its own page; empty without one.
	UI string `json:"ui,omitempty"`
}

// Reports says whether the run is reported on its host: commit statuses and
// comments on a GitHub-compatible host, or comments on a CodeCommit review.
func (p Plan) Reports(ev event.Event) bool {
	if p.Report != nil {
		return true
	}
	cc := p.CodeCommit
	return cc != nil && (cc.Comments == nil || *cc.Comments) && ev.Host == event.HostCodeCommit && ev.Kind == event.KindReview
}

// Stages names the configured stages in the order they run.
func (p Plan) Stages() []string {
	var out []string
	if p.Build != nil {
		out = append(out, "build")
	}
	if p.Bake != nil {
		out = append(out, "bake")
	}
	if p.Test != nil {
		out = append(out, "test")
	}
	if p.Distribute != nil {
		out = append(out, "distribute")
	}
	if p.Publish != nil {
		out = append(out, "publish")
	}
	return out
}

// BuildTimeout is the configured build timeout, or the default.
func (p Plan) BuildTimeout() time.Duration {
	if p.Build != nil && p.Build.Timeout > 0 {
		return time.Duration(p.Build.Timeout)
	}
	return config.DefaultBuildTimeout
}

// BakeTimeout is the configured bake timeout, or the default.
func (p Plan) BakeTimeout() time.Duration {
	if p.Bake != nil && p.Bake.Timeout > 0 {
		return time.Duration(p.Bake.Timeout)
	}
	return config.DefaultBakeTimeout
}

// TestTimeout is the configured test timeout, or the default.
func (p Plan) TestTimeout() time.Duration {
	if p.Test != nil && p.Test.Timeout > 0 {
		return time.Duration(p.Test.Timeout)
	}
	return config.DefaultTestTimeout
}

// TestRegion is where the test instance runs: the configured region, or the
// bake region.
func (p Plan) TestRegion() string {
	if p.Test != nil && p.Test.Region != "" {
		return p.Test.Region
	}
	if p.Bake != nil {
		return p.Bake.Region
	}
	return ""
}

// MaxCopiesPerRegion caps concurrent copies into one destination region.
func (p Plan) MaxCopiesPerRegion() int {
	if p.Distribute != nil && p.Distribute.MaxCopiesPerRegion > 0 {
		return p.Distribute.MaxCopiesPerRegion
	}
	return config.DefaultMaxCopiesPerRegion
}

// RetryWindow is how long a run with failed targets waits for `kiln retry`.
func (p Plan) RetryWindow() time.Duration {
	if p.Distribute != nil && p.Distribute.RetryWindow > 0 {
		return time.Duration(p.Distribute.RetryWindow)
	}
	return config.DefaultRetryWindow
}

// pipeline is the named pipeline of the worker's kiln.yaml; an unknown name
// is a permanent error that lists the pipelines there are.
func (a *Activities) pipeline(name string) (*config.Pipeline, error) {
	if p := a.Config.Pipeline(name); p != nil {
		return p, nil
	}
	names := make([]string, 0, len(a.Config.Pipelines))
	for _, q := range a.Config.Pipelines {
		names = append(names, q.Name)
	}
	return nil, permanent(ErrUnknownPipeline, "pipeline %q is not in %s (pipelines: %s)", name, a.Config.File, strings.Join(names, ", "))
}

// Plan reads the pipeline from config and resolves the commit to build. It fails
// permanently for an unknown pipeline, a manual run of a pipeline that forbids
// them, and a ref the repository does not have.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (*Plan, error) {
	p, err := a.pipeline(in.Pipeline)
	if err != nil {
		return nil, err
	}
	if in.Event.Kind == event.KindManual && !p.Triggers.ManualAllowed() {
		return nil, permanent(ErrManualNotAllowed, "pipeline %q does not allow manual runs (triggers.manual is false)", p.Name)
	}
	if in.Event.Repo != "" && !strings.EqualFold(in.Event.Repo, p.Repo) {
		return nil, permanent(ErrInvalidRunRequest, "event is for repo %q but pipeline %q builds %q", in.Event.Repo, p.Name, p.Repo)
	}
	repo := a.Config.Repo(p.Repo)
	if repo == nil {
		return nil, permanent(ErrInvalidRunRequest, "pipeline %q names repo %q, which is not in %s", p.Name, p.Repo, a.Config.File)
	}
	if err := a.checkContainers(p); err != nil {
		return nil, err
	}
	cloneURL := repo.CloneURL
	if pr := in.Event.PullRequest; pr != nil && pr.SourceRepo != "" && !strings.EqualFold(pr.SourceRepo, repo.Name) {
		fork, err := forkCloneURL(repo.CloneURL, repo.Name, pr.SourceRepo)
		if err != nil {
			return nil, err
		}
		cloneURL = fork
	}
	remote, err := remoteOf(cloneURL, repo.CloneAuth)
	if err != nil {
		return nil, err
	}
	ev, branch := in.Event, ""
	if ev.Ref == "HEAD" && ev.Commit == "" {
		b, err := gitx.DefaultBranch(ctx, remote)
		if err != nil {
			return nil, err
		}
		branch = b
		ev.FromRef(b)
	}
	commit, err := a.resolveCommit(ctx, remote, ev)
	if err != nil {
		return nil, err
	}
	dependents, amiDependents, defaultBranch := a.dependents(p), a.amiDependents(p), branch
	if len(dependents)+len(amiDependents) > 0 && defaultBranch == "" && ev.Branch != "" {
		if defaultBranch, err = gitx.DefaultBranch(ctx, remote); err != nil && !errors.Is(err, gitx.ErrNotFound) {
			return nil, err
		}
	}
	image, err := a.pinBuildImage(ctx, p.Stages.Build)
	if err != nil {
		return nil, err
	}
	return &Plan{
		Repo:             repo.Name,
		CloneURL:         cloneURL,
		CloneAuth:        repo.CloneAuth,
		Commit:           commit,
		Untrusted:        repo.Untrusted(in.Event),
		ApprovalTimeout:  repo.ApprovalTimeout(),
		Branch:           branch,
		CancelSuperseded: p.CancelsSuperseded(in.Event.Kind),
		Build:            p.Stages.Build,
		BuildImage:       image,
		Bake:             p.Stages.Bake,
		Test:             p.Stages.Test,
		Distribute:       p.Stages.Distribute,
		Publish:          p.Stages.Publish,
		Report:           repo.Report,
		CodeCommit:       repo.CodeCommit,
		Notify:           p.Notify,
		Dependents:       dependents,
		AMIDependents:    amiDependents,
		DefaultBranch:    defaultBranch,
		UI:               a.UIURL,
	}, nil
}

func (a *Activities) resolveCommit(ctx context.Context, remote gitx.Remote, ev event.Event) (string, error) {
	if ev.Commit != "" && gitx.IsShortSHA(ev.Commit) && ev.Ref != "" {
		// Bitbucket names a pull request's commit by a prefix: it is the
		// commit at the head of the source branch that starts with it.
		sha, err := gitx.ResolveRef(ctx, remote, ev.Ref)
		if errors.Is(err, gitx.ErrNotFound) {
			return "", permanent(ErrRefNotFound, "commit %s: %v", ev.Commit, err)
		}
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(sha, strings.ToLower(ev.Commit)) {
			return "", permanent(ErrRefNotFound, "commit %s: %s has moved on to %s since", ev.Commit, ev.Ref, sha)
		}
		return sha, nil
	}
	if ev.Commit != "" {
		if !gitx.IsSHA(ev.Commit) {
			return "", permanent(ErrInvalidRunRequest, "commit %q is not a full SHA", ev.Commit)
		}
		if ev.Tag != "" {
			return gitx.PeelTag(ctx, remote, ev.Tag, ev.Commit)
		}
		return ev.Commit, nil
	}
	if ev.Ref == "" {
		return "", permanent(ErrInvalidRunRequest, "the run names neither a commit nor a ref")
	}
	sha, err := gitx.ResolveRef(ctx, remote, ev.Ref)
	if errors.Is(err, gitx.ErrNotFound) {
		return "", permanent(ErrRefNotFound, "%v", err)
	}
	return sha, err
}

// Dependent is a pipeline whose image trigger names an image another
// pipeline publishes.
type Dependent struct {
	Image    string `json:"image"`
	Pipeline string `json:"pipeline"`
	// Ref is the trigger's ref; empty means HEAD.
	Ref string `json:"ref,omitempty"`
}

// dependents lists, in config order, the image triggers on p's images.
func (a *Activities) dependents(p *config.Pipeline) []Dependent {
	if p.Stages.Publish == nil {
		return nil
	}
	var out []Dependent
	for _, img := range p.Stages.Publish.Images {
		for _, q := range a.Config.Pipelines {
			for _, t := range q.Triggers.Image {
				if t.Name == img.Name {
					out = append(out, Dependent{Image: img.Name, Pipeline: q.Name, Ref: t.Ref})
				}
			}
		}
	}
	return out
}

// AMIDependent is a pipeline an AMI of this one starts once tested, at
// Ref (empty: HEAD).
type AMIDependent struct {
	Pipeline string `json:"pipeline"`
	Ref      string `json:"ref,omitempty"`
}

// amiDependents lists, in config order, the AMI triggers on p.
func (a *Activities) amiDependents(p *config.Pipeline) []AMIDependent {
	if p.Stages.Bake == nil || p.Stages.Test == nil {
		return nil
	}
	var out []AMIDependent
	for _, q := range a.Config.Pipelines {
		for _, t := range q.Triggers.AMI {
			if t.Pipeline == p.Name {
				out = append(out, AMIDependent{Pipeline: q.Name, Ref: t.Ref})
			}
		}
	}
	return out
}

// Remote is the plan's repository with its clone credentials, read here on
// the worker.
func (p Plan) Remote() (gitx.Remote, error) { return remoteOf(p.CloneURL, p.CloneAuth) }

func remoteOf(cloneURL string, auth *config.CloneAuth) (gitx.Remote, error) {
	r := gitx.Remote{URL: cloneURL}
	if auth == nil {
		return r, nil
	}
	token, err := auth.Password.Resolve()
	if err != nil {
		return r, permanent(ErrInvalidRunRequest, "clone_auth.password of %s: %v", gitx.Redact(cloneURL), err)
	}
	r.Username, r.Password = auth.User(), string(token)
	return r, nil
}

// checkout checks the plan's commit out into dir, writing git's output to
// log. A commit the remote does not have is permanent.
func checkout(ctx context.Context, plan Plan, dir string, log io.Writer) error {
	r, err := plan.Remote()
	if err != nil {
		return err
	}
	if err := gitx.Checkout(ctx, r, plan.Commit, dir, log); err != nil {
		if errors.Is(err, gitx.ErrNotFound) {
			return permanent(ErrRefNotFound, "%v", err)
		}
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

// forkCloneURL is where a fork's commits are fetched from: the base's
// clone URL from kiln.yaml with the fork's owner/name in place of the
// base's, on the same host and path. Only the name comes from the
// webhook, and only as a plain owner/name, so a pull request cannot point
// kiln (and the repository's credentials) at another host.
func forkCloneURL(base, baseName, fork string) (string, error) {
	if !event.IsRepoName(fork) {
		return "", permanent(ErrInvalidRunRequest, "fork %q is not a plain owner/name", fork)
	}
	trimmed := strings.TrimSuffix(strings.TrimSuffix(base, "/"), ".git")
	i := len(trimmed) - len(baseName)
	if i <= 0 || !strings.EqualFold(trimmed[i:], baseName) || (trimmed[i-1] != '/' && trimmed[i-1] != ':') {
		return "", permanent(ErrInvalidRunRequest, "pull request from the fork %s: clone_url %s does not end in %s, so kiln cannot tell where the fork is",
			fork, gitx.Redact(base), baseName)
	}
	return trimmed[:i] + fork + strings.TrimPrefix(strings.TrimSuffix(base, "/"), trimmed), nil
}
