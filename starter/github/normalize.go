// Package github is kiln's webhook intake for GitHub and Gitea: it checks a
// delivery's origin and signature, translates the payload into an event.Event,
// and starts the pipelines the event triggers.
//
// Gitea sends GitHub-shaped payloads and, besides its own X-Gitea-* headers,
// X-GitHub-Event, so one intake serves both hosts.
package github

import (
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// ReasonPing is the ignored reason Normalize gives for a ping, the event a host
// sends when a webhook is created or tested. It starts nothing, but unlike
// other ignored events it proves the webhook works, so the handler answers it
// with {"pong": true}.
const ReasonPing = intake.Ping

// ErrMalformedPayload wraps every error Normalize returns: the payload is not
// what its event type promises, and redelivering it will not help.
var ErrMalformedPayload = errors.New("malformed webhook payload")

// startingActions are the pull request actions that start a review run.
// Gitea spells synchronize "synchronized".
var startingActions = map[string]bool{
	"opened":       true,
	"synchronize":  true,
	"synchronized": true,
	"reopened":     true,
}

// Normalize translates one webhook delivery into an Event. eventType is the
// X-GitHub-Event header and payload the JSON body.
//
// Exactly one outcome holds: err is non-nil (wrapping ErrMalformedPayload);
// ignored is non-empty and says, for people, why the delivery starts nothing
// (ReasonPing for a ping); or ev is an event to match against pipelines. Repo
// and DeliveryID are set on ev whenever the payload names them, ignored or not.
func Normalize(eventType, deliveryID string, payload []byte) (ev event.Event, ignored string, err error) {
	if err := event.CheckDeliveryID(deliveryID); err != nil {
		return ev, "", fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	ev, ignored, err = normalize(eventType, deliveryID, payload)
	if err == nil && ignored == "" {
		if err := ev.Check(); err != nil {
			return ev, "", fmt.Errorf("%w: %s: %v", ErrMalformedPayload, eventType, err)
		}
	}
	return ev, ignored, err
}

func normalize(eventType, deliveryID string, payload []byte) (ev event.Event, ignored string, err error) {
	ev.DeliveryID = deliveryID
	switch eventType {
	case "push", "pull_request", "ping", "create", "delete":
	default:
		return ev, fmt.Sprintf("event %q starts nothing", eventType), nil
	}
	parsed, err := gh.ParseWebHook(eventType, payload)
	if err != nil {
		return ev, "", fmt.Errorf("%w: %s: %v", ErrMalformedPayload, eventType, err)
	}
	switch e := parsed.(type) {
	case *gh.PushEvent:
		ev.Repo = e.GetRepo().GetFullName()
		return normalizePush(ev, e)
	case *gh.PullRequestEvent:
		ev.Repo = e.GetRepo().GetFullName()
		return normalizePullRequest(ev, e)
	case *gh.PingEvent:
		ev.Repo = e.GetRepo().GetFullName()
		return ev, ReasonPing, nil
	case *gh.CreateEvent:
		ev.Repo = e.GetRepo().GetFullName()
		return ev, "create events start nothing; the push for the same ref does", nil
	case *gh.DeleteEvent:
		ev.Repo = e.GetRepo().GetFullName()
		return ev, "delete events start nothing; a deleted ref has nothing to build", nil
	}
	return ev, "", fmt.Errorf("%w: %s parsed as %T", ErrMalformedPayload, eventType, parsed)
}

// normalizePush handles branch and tag pushes, ignoring deletions.
func normalizePush(ev event.Event, e *gh.PushEvent) (event.Event, string, error) {
	ref := e.GetRef()
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		ev.Kind, ev.Branch = event.KindBranch, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		ev.Kind, ev.Tag = event.KindTag, strings.TrimPrefix(ref, "refs/tags/")
	case ref == "":
		return ev, "", fmt.Errorf("%w: push names no ref", ErrMalformedPayload)
	default:
		return ev, fmt.Sprintf("push to %s starts nothing: not a branch or tag", ref), nil
	}
	ev.Ref = ref
	// Gitea marks a deletion only by an all-zero after; GitHub sets both.
	if e.GetDeleted() || isZeroSHA(e.GetAfter()) {
		return ev, fmt.Sprintf("%s %s deleted", ev.Kind, event.ShortRef(ref)), nil
	}
	if e.GetAfter() == "" {
		return ev, "", fmt.Errorf("%w: push to %s names no commit", ErrMalformedPayload, ref)
	}
	ev.Commit = e.GetAfter()
	// A created ref has no before; the all-zero placeholder is not a commit.
	if !isZeroSHA(e.GetBefore()) {
		ev.Before = e.GetBefore()
	}
	ev.Forced = e.GetForced()
	ev.Sender = e.GetSender().GetLogin()
	ev.Message = e.GetHeadCommit().GetMessage()
	ev.Email = e.GetPusher().GetEmail()
	if ev.Email == "" {
		ev.Email = e.GetHeadCommit().GetAuthor().GetEmail()
	}
	return ev, "", nil
}

// normalizePullRequest turns a pull request opened, synchronized or reopened
// into a review event.
func normalizePullRequest(ev event.Event, e *gh.PullRequestEvent) (event.Event, string, error) {
	if !startingActions[e.GetAction()] {
		return ev, fmt.Sprintf("pull_request action %q starts nothing", e.GetAction()), nil
	}
	pr := e.GetPullRequest()
	if pr == nil || pr.GetHead().GetSHA() == "" {
		return ev, "", fmt.Errorf("%w: pull_request %s names no head commit", ErrMalformedPayload, e.GetAction())
	}
	n := pr.GetNumber()
	if n == 0 {
		n = e.GetNumber()
	}
	head, base := pr.GetHead(), pr.GetBase()
	ev.Kind = event.KindReview
	ev.Ref = fmt.Sprintf("refs/pull/%d/head", n)
	ev.Branch = head.GetRef()
	ev.Commit = head.GetSHA()
	ev.Before = e.GetBefore()
	ev.Sender = e.GetSender().GetLogin()
	ev.Message = pr.GetTitle()
	ev.PullRequest = &event.PullRequest{
		Number:         n,
		Title:          pr.GetTitle(),
		SourceBranch:   head.GetRef(),
		TargetBranch:   base.GetRef(),
		SourceCommit:   head.GetSHA(),
		TargetCommit:   base.GetSHA(),
		SourceCloneURL: head.GetRepo().GetCloneURL(),
		Fork:           isFork(head, base, ev.Repo),
		Author:         pr.GetUser().GetLogin(),
		// Gitea sends none; GitHub upper-cases it.
		AuthorAssociation: strings.ToUpper(pr.GetAuthorAssociation()),
	}
	return ev, "", nil
}

// isFork reports whether the pull request comes from another repository. A
// head without a repository is a fork that has since been deleted; it is
// treated as a fork, since nothing says it is trusted.
func isFork(head, base *gh.PullRequestBranch, repo string) bool {
	baseName := base.GetRepo().GetFullName()
	if baseName == "" {
		baseName = repo
	}
	headName := head.GetRepo().GetFullName()
	return headName == "" || !strings.EqualFold(headName, baseName)
}

// isZeroSHA reports whether sha is the all-zero placeholder hosts send for a
// ref that does not exist (before a creation, after a deletion). SHA-256
// repositories send 64 zeros rather than 40.
func isZeroSHA(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}
