// Package gitlab is kiln's intake for GitLab webhooks (POST /hooks/gitlab):
// pushes, tag pushes and merge requests, authenticated by the hook's secret
// token. Everything else an intake does is starter/intake's.
package gitlab

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// Host is GitLab, for intake.NewHandler.
type Host struct{}

// Name is "gitlab".
func (Host) Name() string { return "gitlab" }

// Headers reads X-Gitlab-Event and the delivery's ID: Idempotency-Key,
// which GitLab keeps across its retries, or else X-Gitlab-Event-UUID.
func (Host) Headers(h http.Header) (string, string, error) {
	return intake.ReadHeaders(h, "X-Gitlab-Event", "Idempotency-Key", "X-Gitlab-Event-UUID")
}

// Authenticate compares X-Gitlab-Token with the secret.
func (Host) Authenticate(h http.Header, _, secret []byte) error {
	return intake.CheckToken(h, "X-Gitlab-Token", secret)
}

// project is the part of a payload's project kiln reads.
type project struct {
	ID                int    `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
}

// Repo reads project.path_with_namespace, the name kiln.yaml lists.
func (Host) Repo(payload []byte) (string, error) {
	return intake.StringAt(payload, "project", "path_with_namespace")
}

// Normalize turns a push, tag push or merge request into its event.
func (Host) Normalize(eventType, deliveryID string, payload []byte) ([]event.Event, string, error) {
	var p payloadOf
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", intake.ErrMalformed, eventType, err)
	}
	ev := event.Event{Host: event.HostGitLab, Repo: p.Project.PathWithNamespace, DeliveryID: deliveryID}
	switch p.ObjectKind {
	case "push", "tag_push":
		return push(ev, p)
	case "merge_request":
		return mergeRequest(ev, p)
	}
	return nil, fmt.Sprintf("%s events start nothing", eventType), nil
}

// Comment reads a note on a merge request (a Note Hook): its first line
// may approve the merge request's waiting runs. GitLab sends no
// association, so only the logins repos[].trust lists may.
func (Host) Comment(_ string, payload []byte) (*intake.Comment, error) {
	var p struct {
		ObjectKind string `json:"object_kind"`
		User       struct {
			Username string `json:"username"`
		} `json:"user"`
		ObjectAttributes struct {
			Note         string `json:"note"`
			NoteableType string `json:"noteable_type"`
		} `json:"object_attributes"`
		MergeRequest *struct {
			IID int `json:"iid"`
		} `json:"merge_request"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", intake.ErrMalformed, err)
	}
	if p.ObjectKind != "note" || p.ObjectAttributes.NoteableType != "MergeRequest" || p.MergeRequest == nil {
		return nil, nil
	}
	return &intake.Comment{Number: p.MergeRequest.IID, Body: p.ObjectAttributes.Note, By: p.User.Username}, nil
}

// payloadOf is the part of push, tag push and merge request payloads kiln
// reads.
type payloadOf struct {
	ObjectKind   string  `json:"object_kind"`
	Ref          string  `json:"ref"`
	Before       string  `json:"before"`
	After        string  `json:"after"`
	CheckoutSHA  *string `json:"checkout_sha"`
	UserUsername string  `json:"user_username"`
	UserEmail    string  `json:"user_email"`
	Project      project `json:"project"`
	Commits      []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"commits"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectAttributes *struct {
		IID             int    `json:"iid"`
		Action          string `json:"action"`
		Title           string `json:"title"`
		SourceBranch    string `json:"source_branch"`
		TargetBranch    string `json:"target_branch"`
		SourceProjectID int    `json:"source_project_id"`
		TargetProjectID int    `json:"target_project_id"`
		OldRev          string `json:"oldrev"`
		State           string `json:"state"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
		Source project `json:"source"`
		Target project `json:"target"`
	} `json:"object_attributes"`
}

func push(ev event.Event, p payloadOf) ([]event.Event, string, error) {
	switch {
	case strings.HasPrefix(p.Ref, "refs/heads/"):
		ev.Kind, ev.Branch = event.KindBranch, strings.TrimPrefix(p.Ref, "refs/heads/")
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		ev.Kind, ev.Tag = event.KindTag, strings.TrimPrefix(p.Ref, "refs/tags/")
	case p.Ref == "":
		return nil, "", fmt.Errorf("%w: push names no ref", intake.ErrMalformed)
	default:
		return nil, fmt.Sprintf("push to %s starts nothing: not a branch or tag", p.Ref), nil
	}
	ev.Ref = p.Ref
	// GitLab sends a deletion with an all-zero after and a null checkout_sha.
	if isZero(p.After) || (p.CheckoutSHA == nil && p.After == "") {
		return nil, fmt.Sprintf("%s %s deleted", ev.Kind, event.ShortRef(p.Ref)), nil
	}
	// checkout_sha is the commit, also of an annotated tag, whose after is
	// the tag object.
	ev.Commit = p.After
	if p.CheckoutSHA != nil && *p.CheckoutSHA != "" {
		ev.Commit = *p.CheckoutSHA
	}
	if !isZero(p.Before) {
		ev.Before = p.Before
	}
	ev.Sender, ev.Email = p.UserUsername, p.UserEmail
	for _, c := range p.Commits {
		if c.ID == ev.Commit {
			ev.Message = c.Message
		}
	}
	return []event.Event{ev}, "", nil
}

// mergeRequest turns a merge request opened, reopened, or updated with new
// commits into a review event. GitLab's ref of its head is
// refs/merge-requests/<iid>/head, in the target project, forks included.
func mergeRequest(ev event.Event, p payloadOf) ([]event.Event, string, error) {
	mr := p.ObjectAttributes
	if mr == nil {
		return nil, "", fmt.Errorf("%w: merge request without object_attributes", intake.ErrMalformed)
	}
	switch {
	case mr.Action == "open" || mr.Action == "reopen":
	case mr.Action == "update" && mr.OldRev != "":
	case mr.Action == "update":
		return nil, fmt.Sprintf("merge request !%d was updated without new commits", mr.IID), nil
	default:
		return nil, fmt.Sprintf("merge request action %q starts nothing", mr.Action), nil
	}
	if mr.LastCommit.ID == "" {
		return nil, "", fmt.Errorf("%w: merge request !%d names no last commit", intake.ErrMalformed, mr.IID)
	}
	ev.Kind = event.KindReview
	ev.Ref = fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)
	ev.Branch = mr.SourceBranch
	ev.Commit = mr.LastCommit.ID
	if mr.OldRev != "" {
		ev.Before = mr.OldRev
	}
	ev.Sender = p.User.Username
	ev.Message = mr.Title
	ev.PullRequest = &event.PullRequest{
		Number: mr.IID, Title: mr.Title, SourceBranch: mr.SourceBranch, TargetBranch: mr.TargetBranch,
		SourceCommit: mr.LastCommit.ID, SourceCloneURL: mr.Source.GitHTTPURL,
		// No Author: the payload's user is whoever triggered the event
		// (reopened, pushed), not the merge request's author, so it
		// cannot vouch for the change.
		Fork: mr.SourceProjectID != mr.TargetProjectID,
	}
	return []event.Event{ev}, "", nil
}

func isZero(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}
