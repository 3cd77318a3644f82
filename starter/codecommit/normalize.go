package codecommit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ci/kiln/internal/event"
)

// The EventBridge detail-types kiln reads. Every other CodeCommit detail-type
// (comments, approval rule templates, reactions) starts nothing.
const (
	detailRepositoryStateChange  = "CodeCommit Repository State Change"
	detailPullRequestStateChange = "CodeCommit Pull Request State Change"
)

// source is the EventBridge source of every CodeCommit event.
const source = "aws.codecommit"

// ErrMalformedEvent wraps every error parsing or normalizing returns: the body
// is not the CodeCommit event it claims to be, and redelivering it will not help.
var ErrMalformedEvent = errors.New("malformed CodeCommit event")

// Envelope is an EventBridge event from CodeCommit, as an API destination
// POSTs it. Nothing in it is trusted before the token is checked: the
// repository it names only selects the secret to check the token against.
type Envelope struct {
	Version string `json:"version"`
	// ID identifies the event. EventBridge keeps it when it retries a
	// delivery, so it is the event's delivery ID.
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     Detail   `json:"detail"`
}

// Detail holds the fields kiln reads from the detail of a repository state
// change and of a pull request state change; each sets only its own.
type Detail struct {
	// Event is what happened: referenceCreated, pullRequestCreated, ...
	Event         string `json:"event"`
	CallerUserArn string `json:"callerUserArn"`

	// Repository state change.
	RepositoryName    string `json:"repositoryName"`
	ReferenceType     string `json:"referenceType"`
	ReferenceName     string `json:"referenceName"`
	ReferenceFullName string `json:"referenceFullName"`
	CommitID          string `json:"commitId"`
	OldCommitID       string `json:"oldCommitId"`

	// Pull request state change.
	RepositoryNames      []string `json:"repositoryNames"`
	PullRequestID        string   `json:"pullRequestId"`
	Title                string   `json:"title"`
	Author               string   `json:"author"`
	SourceReference      string   `json:"sourceReference"`
	DestinationReference string   `json:"destinationReference"`
	SourceCommit         string   `json:"sourceCommit"`
	DestinationCommit    string   `json:"destinationCommit"`
	PullRequestStatus    string   `json:"pullRequestStatus"`
	IsMerged             string   `json:"isMerged"`
}

// ParseEnvelope reads an EventBridge event and checks it comes from
// CodeCommit and carries what every delivery needs: an ID, a detail-type and
// a detail object.
func ParseEnvelope(body []byte) (*Envelope, error) {
	var probe struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("%w: body is not JSON: %v", ErrMalformedEvent, err)
	}
	if d := strings.TrimSpace(string(probe.Detail)); !strings.HasPrefix(d, "{") {
		return nil, fmt.Errorf("%w: detail is missing or not an object; is this an EventBridge event?", ErrMalformedEvent)
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	switch {
	case env.Source != source:
		return nil, fmt.Errorf("%w: source is %q, not %q", ErrMalformedEvent, env.Source, source)
	case env.ID == "":
		return nil, fmt.Errorf("%w: event has no id", ErrMalformedEvent)
	case env.DetailType == "":
		return nil, fmt.Errorf("%w: event has no detail-type", ErrMalformedEvent)
	}
	return &env, nil
}

// RepoName is the CodeCommit repository the event is about: repositoryName
// for repository and comment events, the first of repositoryNames for pull
// request events. It is empty when the event names none.
func (e *Envelope) RepoName() string {
	if e.Detail.RepositoryName != "" {
		return e.Detail.RepositoryName
	}
	if len(e.Detail.RepositoryNames) > 0 {
		return e.Detail.RepositoryNames[0]
	}
	return ""
}

// Normalize translates a CodeCommit event into an Event, as github.Normalize
// does for webhooks. Exactly one outcome holds: err is non-nil (wrapping
// ErrMalformedEvent); ignored is non-empty and says, for people, why the event
// starts nothing; or ev is an event to match against pipelines. Host, Repo and
// DeliveryID are set whatever the outcome.
func Normalize(env *Envelope) (ev event.Event, ignored string, err error) {
	ev.Host = event.HostCodeCommit
	ev.Repo = env.RepoName()
	ev.DeliveryID = env.ID
	if err := event.CheckDeliveryID(env.ID); err != nil {
		return ev, "", fmt.Errorf("%w: event id: %v", ErrMalformedEvent, err)
	}
	switch env.DetailType {
	case detailRepositoryStateChange:
		ev, ignored, err = normalizeReference(ev, env.Detail)
	case detailPullRequestStateChange:
		ev, ignored, err = normalizePullRequest(ev, env.Detail)
	default:
		return ev, fmt.Sprintf("%q events start nothing", env.DetailType), nil
	}
	if err == nil && ignored == "" {
		if err := ev.Check(); err != nil {
			return ev, "", fmt.Errorf("%w: %v", ErrMalformedEvent, err)
		}
	}
	return ev, ignored, err
}

// normalizeReference turns a branch or tag created or moved into a branch or
// tag event, and ignores deletions.
func normalizeReference(ev event.Event, d Detail) (event.Event, string, error) {
	switch d.Event {
	case "referenceCreated", "referenceUpdated", "referenceDeleted":
	default:
		return ev, fmt.Sprintf("repository event %q starts nothing", d.Event), nil
	}
	var prefix string
	switch d.ReferenceType {
	case "branch":
		ev.Kind, prefix = event.KindBranch, "refs/heads/"
	case "tag":
		ev.Kind, prefix = event.KindTag, "refs/tags/"
	default:
		return ev, fmt.Sprintf("%s of a %q reference starts nothing: not a branch or tag", d.Event, d.ReferenceType), nil
	}
	ev.Ref = d.ReferenceFullName
	if ev.Ref == "" && d.ReferenceName != "" {
		ev.Ref = prefix + d.ReferenceName
	}
	name, ok := strings.CutPrefix(ev.Ref, prefix)
	if !ok || name == "" {
		return ev, "", fmt.Errorf("%w: %s reference %q is not under %s", ErrMalformedEvent, d.ReferenceType, ev.Ref, prefix)
	}
	if ev.Kind == event.KindBranch {
		ev.Branch = name
	} else {
		ev.Tag = name
	}
	ev.Sender = d.CallerUserArn
	if d.Event == "referenceDeleted" {
		return ev, fmt.Sprintf("%s %s deleted", ev.Kind, name), nil
	}
	if d.CommitID == "" {
		return ev, "", fmt.Errorf("%w: %s of %s names no commitId", ErrMalformedEvent, d.Event, ev.Ref)
	}
	ev.Commit = d.CommitID
	// referenceCreated has no oldCommitId; CodeCommit sends no force flag.
	ev.Before = d.OldCommitID
	return ev, "", nil
}

// normalizePullRequest turns an open pull request, created or with its source
// branch updated, into a review event.
//
// CodeCommit has no refs/pull/<id>/head: the source branch lives in the same
// repository (CodeCommit has no forks). So Ref is the source reference itself,
// refs/heads/<source>, which a build can fetch, and Commit pins the commit the
// event announced even if the branch moves on.
func normalizePullRequest(ev event.Event, d Detail) (event.Event, string, error) {
	switch d.Event {
	// A status change to Open is a reopened pull request, which starts a
	// run as GitHub's "reopened" does; to Closed it is ignored below.
	case "pullRequestCreated", "pullRequestSourceBranchUpdated", "pullRequestStatusChanged":
	default:
		return ev, fmt.Sprintf("pull request event %q starts nothing", d.Event), nil
	}
	n, err := strconv.Atoi(d.PullRequestID)
	if err != nil || n <= 0 {
		return ev, "", fmt.Errorf("%w: pullRequestId %q is not a pull request number", ErrMalformedEvent, d.PullRequestID)
	}
	if d.PullRequestStatus != "Open" || d.IsMerged == "True" {
		return ev, fmt.Sprintf("pull request %d is %s, not open", n, closedState(d)), nil
	}
	source, target := branchOf(d.SourceReference), branchOf(d.DestinationReference)
	switch {
	case source == "" || target == "":
		return ev, "", fmt.Errorf("%w: pull request %d names no source or destination branch", ErrMalformedEvent, n)
	case d.SourceCommit == "":
		return ev, "", fmt.Errorf("%w: pull request %d names no sourceCommit", ErrMalformedEvent, n)
	}
	ev.Kind = event.KindReview
	ev.Ref = "refs/heads/" + source
	ev.Branch = source
	ev.Commit = d.SourceCommit
	ev.Sender = d.CallerUserArn
	if ev.Sender == "" {
		ev.Sender = d.Author
	}
	ev.Message = d.Title
	ev.PullRequest = &event.PullRequest{
		Number:       n,
		Title:        d.Title,
		SourceBranch: source,
		TargetBranch: target,
		SourceCommit: d.SourceCommit,
		TargetCommit: d.DestinationCommit,
	}
	return ev, "", nil
}

// branchOf is the branch a pull request reference names. CodeCommit sends
// refs/heads/<branch>; a bare name is taken as the branch itself.
func branchOf(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b
	}
	if strings.HasPrefix(ref, "refs/") {
		return ""
	}
	return ref
}

// closedState says, for people, what a pull request that is not open is.
func closedState(d Detail) string {
	switch {
	case d.IsMerged == "True":
		return "merged"
	case d.PullRequestStatus == "":
		return "in no status"
	}
	return strings.ToLower(d.PullRequestStatus)
}
