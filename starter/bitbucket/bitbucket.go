// Package bitbucket is kiln's intake for Bitbucket Cloud webhooks (POST
// /hooks/bitbucket): pushes, which may carry several branch and tag
// changes, and pull requests created or updated, signed with the hook's
// secret. Everything else an intake does is starter/intake's.
package bitbucket

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// Host is Bitbucket Cloud, for intake.NewHandler.
type Host struct{}

// Name is "bitbucket".
func (Host) Name() string { return "bitbucket" }

// Headers reads X-Event-Key and X-Request-UUID, which Bitbucket keeps
// when it retries a delivery.
func (Host) Headers(h http.Header) (string, string, error) {
	return intake.ReadHeaders(h, "X-Event-Key", "X-Request-UUID")
}

// Authenticate checks X-Hub-Signature: "sha256=" and the hex HMAC-SHA256
// of the body under the secret. (GitHub's old header has the same name and
// a SHA-1; Bitbucket's is SHA-256.)
func (Host) Authenticate(h http.Header, body, secret []byte) error {
	sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature"), "sha256=")
	switch {
	case h.Get("X-Hub-Signature") == "":
		return errors.New("missing X-Hub-Signature header")
	case !ok:
		return errors.New("X-Hub-Signature is not sha256=<hex>")
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errors.New("X-Hub-Signature is not sha256=<hex>")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("signature does not match")
	}
	return nil
}

type repository struct {
	FullName string `json:"full_name"`
}

// Repo reads repository.full_name, the name kiln.yaml lists.
func (Host) Repo(payload []byte) (string, error) {
	return intake.StringAt(payload, "repository", "full_name")
}

type actor struct {
	Nickname    string `json:"nickname"`
	DisplayName string `json:"display_name"`
}

type ref struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
	} `json:"target"`
}

type side struct {
	Branch struct {
		Name string `json:"name"`
	} `json:"branch"`
	Commit struct {
		Hash string `json:"hash"`
	} `json:"commit"`
	Repository repository `json:"repository"`
}

// Comment reads a new comment on a pull request
// (pullrequest:comment_created): its first line may approve the pull
// request's waiting runs. The commenter is their account_id, which is
// unique (a nickname is not), so repos[].trust.logins lists account IDs for
// a Bitbucket repository.
func (Host) Comment(eventType string, payload []byte) (*intake.Comment, error) {
	if eventType != "pullrequest:comment_created" {
		return nil, nil
	}
	var p struct {
		Actor struct {
			AccountID string `json:"account_id"`
		} `json:"actor"`
		PullRequest struct {
			ID int `json:"id"`
		} `json:"pullrequest"`
		Comment struct {
			Content struct {
				Raw string `json:"raw"`
			} `json:"content"`
		} `json:"comment"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", intake.ErrMalformed, eventType, err)
	}
	return &intake.Comment{Number: p.PullRequest.ID, Body: p.Comment.Content.Raw, By: p.Actor.AccountID}, nil
}

type payloadOf struct {
	Repository repository `json:"repository"`
	Actor      actor      `json:"actor"`
	Push       *struct {
		Changes []struct {
			New    *ref `json:"new"`
			Old    *ref `json:"old"`
			Forced bool `json:"forced"`
		} `json:"changes"`
	} `json:"push"`
	PullRequest *struct {
		ID          int    `json:"id"`
		Title       string `json:"title"`
		Author      actor  `json:"author"`
		Source      side   `json:"source"`
		Destination side   `json:"destination"`
	} `json:"pullrequest"`
}

// Normalize turns repo:push into one event per branch or tag change, and
// pullrequest:created and :updated into a review event.
func (Host) Normalize(eventType, deliveryID string, payload []byte) ([]event.Event, string, error) {
	var p payloadOf
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", intake.ErrMalformed, eventType, err)
	}
	ev := event.Event{Host: event.HostBitbucket, Repo: p.Repository.FullName, DeliveryID: deliveryID, Sender: p.Actor.Nickname}
	switch eventType {
	case "repo:push":
		return push(ev, p)
	case "pullrequest:created", "pullrequest:updated":
		return pullRequest(ev, p)
	}
	return nil, fmt.Sprintf("event %q starts nothing", eventType), nil
}

// push makes one event per change that creates or moves a branch or tag.
// Each gets the delivery's ID and its index, so a redelivery of the push
// maps to the same runs.
func push(base event.Event, p payloadOf) ([]event.Event, string, error) {
	if p.Push == nil {
		return nil, "", fmt.Errorf("%w: repo:push without push", intake.ErrMalformed)
	}
	var evs []event.Event
	var ignored []string
	for i, c := range p.Push.Changes {
		if c.New == nil {
			if c.Old != nil {
				ignored = append(ignored, fmt.Sprintf("%s %s deleted", c.Old.Type, c.Old.Name))
			}
			continue
		}
		ev := base
		if len(p.Push.Changes) > 1 {
			ev.DeliveryID = fmt.Sprintf("%s-%d", base.DeliveryID, i)
		}
		switch c.New.Type {
		case "branch":
			ev.Kind, ev.Branch, ev.Ref = event.KindBranch, c.New.Name, "refs/heads/"+c.New.Name
		case "tag", "annotated_tag":
			ev.Kind, ev.Tag, ev.Ref = event.KindTag, c.New.Name, "refs/tags/"+c.New.Name
		default:
			ignored = append(ignored, fmt.Sprintf("a %s change starts nothing", c.New.Type))
			continue
		}
		if c.New.Name == "" || c.New.Target.Hash == "" {
			return nil, "", fmt.Errorf("%w: change %d names no %s or commit", intake.ErrMalformed, i, c.New.Type)
		}
		ev.Commit, ev.Forced, ev.Message = c.New.Target.Hash, c.Forced, c.New.Target.Message
		if c.Old != nil {
			ev.Before = c.Old.Target.Hash
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		if len(ignored) == 0 {
			ignored = append(ignored, "the push changes no branch or tag")
		}
		return nil, strings.Join(ignored, "; "), nil
	}
	return evs, "", nil
}

// pullRequest turns a pull request created or updated into a review event.
// Bitbucket names commits by a 12-character prefix; the plan finds the
// commit it is a prefix of at the head of the source branch. A fork's pull
// request names the fork, whose commits the plan fetches from it; it waits
// for approval like any untrusted change.
func pullRequest(ev event.Event, p payloadOf) ([]event.Event, string, error) {
	pr := p.PullRequest
	if pr == nil {
		return nil, "", fmt.Errorf("%w: pull request event without pullrequest", intake.ErrMalformed)
	}
	src, dst := pr.Source, pr.Destination
	if src.Commit.Hash == "" || src.Branch.Name == "" {
		return nil, "", fmt.Errorf("%w: pull request #%d names no source branch or commit", intake.ErrMalformed, pr.ID)
	}
	// A source without a repository is a deleted fork: nothing says it is not.
	if src.Repository.FullName == "" {
		return nil, fmt.Sprintf("pull request #%d comes from a fork that was deleted: there is nothing to build", pr.ID), nil
	}
	fork := !strings.EqualFold(src.Repository.FullName, dst.Repository.FullName)
	ev.Kind = event.KindReview
	ev.Ref = "refs/heads/" + src.Branch.Name
	ev.Branch = src.Branch.Name
	ev.Commit = src.Commit.Hash
	ev.Message = pr.Title
	// pullrequest:updated fires on every edit of the title or reviewers
	// too, each with a new request ID: the commit makes the run, so an
	// edit finds the run of its commit already started.
	ev.DeliveryID = "commit-" + strings.ToLower(src.Commit.Hash)
	// No Author: Bitbucket's nickname is not unique, so it cannot be a
	// login kiln.yaml trusts.
	ev.PullRequest = &event.PullRequest{
		Number: pr.ID, Title: pr.Title, SourceBranch: src.Branch.Name, TargetBranch: dst.Branch.Name,
		SourceCommit: src.Commit.Hash, TargetCommit: dst.Commit.Hash,
	}
	if fork {
		ev.PullRequest.Fork, ev.PullRequest.SourceRepo = true, src.Repository.FullName
	}
	return []event.Event{ev}, "", nil
}
