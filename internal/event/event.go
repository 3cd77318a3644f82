// Package event holds kiln's normalized trigger event: what happened in a
// repository (or on a clock, or at a person's request) that may start a
// pipeline. Git-host adapters translate their payloads into an Event; config
// matches an Event against pipeline triggers; the pipeline workflow receives it
// as input and exposes it to builds only as environment variables.
package event

import (
	"fmt"
	"strings"
)

// Kind is what sort of thing started a run. The values double as trigger names
// in kiln.yaml and as the KilnEvent search attribute.
type Kind string

// The kinds of event kiln starts pipelines for.
const (
	// KindBranch is a push to a branch.
	KindBranch Kind = "branch"
	// KindTag is a pushed tag.
	KindTag Kind = "tag"
	// KindReview is a pull request opened, synchronized or reopened.
	KindReview Kind = "review"
	// KindSchedule is a run started by a Temporal Schedule.
	KindSchedule Kind = "schedule"
	// KindManual is an on-demand run started with `kiln run`.
	KindManual Kind = "manual"
	// KindImage is a run started because another pipeline published an
	// image this pipeline's triggers name.
	KindImage Kind = "image"
	// KindAMI is a run started because another pipeline's AMI passed its
	// test, and this pipeline's triggers name that pipeline.
	KindAMI Kind = "ami"
)

// Hosts an event may come from, besides the GitHub-compatible ones ("").
const (
	// HostCodeCommit marks events from AWS CodeCommit.
	HostCodeCommit = "codecommit"
	// HostGitLab marks GitLab webhooks (/hooks/gitlab).
	HostGitLab = "gitlab"
	// HostBitbucket marks Bitbucket Cloud webhooks (/hooks/bitbucket).
	HostBitbucket = "bitbucket"
)

// Event is one occurrence that may start pipelines. Every string in it may come
// from an untrusted payload: it is data, never code.
type Event struct {
	Kind Kind `json:"kind"`
	// Host is where the event came from: "" for GitHub-compatible hosts,
	// else HostCodeCommit, HostGitLab or HostBitbucket.
	Host string `json:"host,omitempty"`
	// Repo is the repository's full name as the host spells it, e.g. "acme/widget".
	Repo string `json:"repo"`
	// Ref is the full git ref: refs/heads/main, refs/tags/v1.2.0, refs/pull/7/head.
	Ref string `json:"ref"`
	// Branch is set for branch pushes, and to the source branch for reviews.
	Branch string `json:"branch,omitempty"`
	// Tag is set for tag pushes.
	Tag string `json:"tag,omitempty"`
	// Commit is the full SHA to build. Empty means "resolve Ref when the run starts",
	// which is what schedules and `kiln run` without --commit do.
	Commit string `json:"commit,omitempty"`
	// Before is the SHA the ref pointed at before a push, when known.
	Before string `json:"before,omitempty"`
	// Forced is true for a force push.
	Forced bool `json:"forced,omitempty"`
	// PullRequest is set for review events.
	PullRequest *PullRequest `json:"pull_request,omitempty"`
	// Sender is the login of whoever caused the event.
	Sender string `json:"sender,omitempty"`
	// Email is the pusher's address, or the head commit author's, when the
	// host sent one; notifications go to it.
	Email string `json:"email,omitempty"`
	// Message is the head commit message, or the pull request title.
	Message string `json:"message,omitempty"`
	// DeliveryID identifies a webhook delivery (X-GitHub-Delivery); redeliveries
	// carry the same one, which is what makes them start no second run.
	DeliveryID string `json:"delivery_id,omitempty"`
	// Schedule names the schedule that started the run, for schedule events.
	Schedule string `json:"schedule,omitempty"`
	// Image is the published image that started the run, for image events.
	Image *ImagePush `json:"image,omitempty"`
	// AMI is the tested AMI that started the run, for AMI events.
	AMI *AMIPass `json:"ami,omitempty"`
}

// AMIPass is a bake whose AMI passed its test.
type AMIPass struct {
	// Pipeline and RunID name the run that baked and tested it, Commit
	// the commit it was baked from.
	Pipeline string `json:"pipeline"`
	RunID    string `json:"run_id"`
	Commit   string `json:"commit"`
	// Region is the bake's region, AMIs its AMI in each region it made one.
	Region string            `json:"region"`
	AMIs   map[string]string `json:"amis"`
}

// In returns the AMI in region, or else the one in the bake's region: the
// base a dependent pipeline builds on.
func (p *AMIPass) In(region string) string {
	return p.AMIs[p.BaseRegion(region)]
}

// BaseRegion is where the base a dependent baking in region builds on is:
// region when the bake made an AMI there, else the bake's region.
func (p *AMIPass) BaseRegion(region string) string {
	if p.AMIs[region] != "" {
		return region
	}
	return p.Region
}

// ImagePush is an image a pipeline run published.
type ImagePush struct {
	// Name is the image repository, Digest the pushed manifest's digest.
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Pipeline and RunID name the run that published it.
	Pipeline string `json:"pipeline"`
	RunID    string `json:"run_id"`
}

// PullRequest carries what a review build needs to know about the change.
type PullRequest struct {
	Number int    `json:"number"`
	Title  string `json:"title,omitempty"`
	// Author is the login of the pull request's author, and
	// AuthorAssociation their relation to the repository as the host puts
	// it (GitHub's OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, ...); empty
	// when the host sends none.
	Author            string `json:"author,omitempty"`
	AuthorAssociation string `json:"author_association,omitempty"`
	SourceBranch      string `json:"source_branch"`
	TargetBranch      string `json:"target_branch"`
	SourceCommit      string `json:"source_commit"`
	TargetCommit      string `json:"target_commit,omitempty"`
	// SourceCloneURL is the head repository's clone URL; it differs from the
	// base repository's for a pull request from a fork.
	SourceCloneURL string `json:"source_clone_url,omitempty"`
	Fork           bool   `json:"fork,omitempty"`
	// SourceRepo is the fork's full name ("owner/name") on a host whose
	// pull requests have no ref in the base repository (Bitbucket): the
	// plan fetches the fork's commits from the fork, at the clone URL
	// kiln.yaml gives the base with the fork's name instead.
	SourceRepo string `json:"source_repo,omitempty"`
}

// RefLabel is a short, readable name for the ref the event is about: the branch
// name, "tag-<tag>", or "pr-<number>". It goes into workflow IDs and is the
// KilnRef search attribute, so runs for one ref can be found (and superseded).
func (e Event) RefLabel() string {
	switch {
	case e.Kind == KindReview && e.PullRequest != nil:
		return fmt.Sprintf("pr-%d", e.PullRequest.Number)
	case e.Tag != "":
		return "tag-" + e.Tag
	case e.Branch != "":
		return e.Branch
	default:
		return ShortRef(e.Ref)
	}
}

// ShortRef strips refs/heads/ or refs/tags/ from a full ref name.
func ShortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}

// FromRef fills Ref, Branch and Tag from a ref the way a person types it:
// "main", "refs/heads/main", "refs/tags/v1" or "v1" given as a tag. "HEAD" is
// the repository's default branch, whose name the plan learns.
func (e *Event) FromRef(ref string) {
	switch {
	case ref == "HEAD":
		e.Ref = ref
	case strings.HasPrefix(ref, "refs/tags/"):
		e.Ref, e.Tag = ref, strings.TrimPrefix(ref, "refs/tags/")
	case strings.HasPrefix(ref, "refs/heads/"):
		e.Ref, e.Branch = ref, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/"):
		e.Ref = ref
	default:
		e.Ref, e.Branch = "refs/heads/"+ref, ref
	}
}
