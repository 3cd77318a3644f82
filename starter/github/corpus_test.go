package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/event"
)

// corpusPath is @octokit/webhooks-examples' list of real GitHub payloads,
// installed by `npm ci --prefix test/fixtures`.
const corpusPath = "../../test/fixtures/node_modules/@octokit/webhooks-examples/api.github.com/index.json"

// corpusEvents are the event types whose every example the test delivers.
var corpusEvents = []string{"push", "pull_request", "create", "delete", "ping"}

// corpusExample is one real payload of the corpus.
type corpusExample struct {
	Event string
	Index int
	Body  []byte
}

// examplePayload is what the test reads from a payload, on its own, to say
// what kiln must do with it.
type examplePayload struct {
	Action     string       `json:"action"`
	Ref        string       `json:"ref"`
	Before     string       `json:"before"`
	After      string       `json:"after"`
	Deleted    bool         `json:"deleted"`
	Forced     bool         `json:"forced"`
	Repository *exampleRepo `json:"repository"`
	Sender     struct {
		Login string `json:"login"`
	} `json:"sender"`
	HeadCommit *struct {
		Message string `json:"message"`
		Author  struct {
			Email string `json:"email"`
		} `json:"author"`
	} `json:"head_commit"`
	Pusher struct {
		Email string `json:"email"`
	} `json:"pusher"`
	PullRequest struct {
		Number int    `json:"number"`
		Title  string `json:"title"`
		User   struct {
			Login string `json:"login"`
		} `json:"user"`
		AuthorAssociation string        `json:"author_association"`
		Head              exampleBranch `json:"head"`
		Base              exampleBranch `json:"base"`
	} `json:"pull_request"`
}

type exampleBranch struct {
	Ref  string       `json:"ref"`
	SHA  string       `json:"sha"`
	Repo *exampleRepo `json:"repo"`
}

type exampleRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
}

// loadCorpus reads every example of corpusEvents. A missing corpus fails the
// test: skipping would let the suite pass without its most telling cases.
func loadCorpus(t *testing.T) []corpusExample {
	t.Helper()
	b, err := os.ReadFile(corpusPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("webhook payload corpus missing at %s; run `npm ci --prefix test/fixtures` in the repository root", corpusPath)
	}
	require.NoError(t, err)
	var index []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	require.NoError(t, json.Unmarshal(b, &index))
	var out []corpusExample
	for _, name := range corpusEvents {
		n := 0
		for _, e := range index {
			if e.Name != name {
				continue
			}
			for _, ex := range e.Examples {
				out = append(out, corpusExample{Event: name, Index: n, Body: ex})
				n++
			}
		}
		require.NotZero(t, n, "corpus has no %s examples", name)
	}
	return out
}

// expected is what the handler must answer and start for one delivery.
type expected struct {
	Status int
	Resp   Response
	Starts []startCall
}

// expect derives the outcome of a delivery from the payload and the rules of
// the intake, for a config where every repo has pipelines "<repo>/branch",
// "<repo>/tag" and "<repo>/review" that fire on everything.
func expect(t *testing.T, eventType, deliveryID string, body []byte) expected {
	t.Helper()
	var p examplePayload
	require.NoError(t, json.Unmarshal(body, &p))
	if p.Repository == nil {
		if eventType == "ping" {
			return expected{Status: http.StatusOK, Resp: Response{Pong: true}}
		}
		return expected{Status: http.StatusAccepted,
			Resp: Response{Ignored: eventType + " names no repository; kiln starts runs only for the repositories in kiln.yaml"}}
	}
	repo := p.Repository.FullName
	ignored := func(reason string) expected {
		return expected{Status: http.StatusAccepted, Resp: Response{Ignored: reason}}
	}
	switch eventType {
	case "ping":
		return expected{Status: http.StatusOK, Resp: Response{Pong: true}}
	case "create":
		return ignored("create events start nothing; the push for the same ref does")
	case "delete":
		return ignored("delete events start nothing; a deleted ref has nothing to build")
	case "push":
		ev := event.Event{Repo: repo, Ref: p.Ref, DeliveryID: deliveryID}
		kind, name := "", ""
		if b, ok := strings.CutPrefix(p.Ref, "refs/heads/"); ok {
			kind, name, ev.Kind, ev.Branch = "branch", b, event.KindBranch, b
		} else if tag, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
			kind, name, ev.Kind, ev.Tag = "tag", tag, event.KindTag, tag
		} else {
			t.Fatalf("corpus push to %q is neither branch nor tag", p.Ref)
		}
		if p.Deleted || p.After == strings.Repeat("0", 40) {
			return ignored(kind + " " + name + " deleted")
		}
		ev.Commit, ev.Forced, ev.Sender = p.After, p.Forced, p.Sender.Login
		if p.Before != strings.Repeat("0", 40) {
			ev.Before = p.Before
		}
		ev.Email = p.Pusher.Email
		if p.HeadCommit != nil {
			ev.Message = p.HeadCommit.Message
			if ev.Email == "" {
				ev.Email = p.HeadCommit.Author.Email
			}
		}
		return started(repo+"/"+kind, ev)
	case "pull_request":
		switch p.Action {
		case "opened", "synchronize", "reopened":
			return started(repo+"/review", reviewEvent(p, deliveryID))
		}
		return ignored(fmt.Sprintf("pull_request action %q starts nothing", p.Action))
	}
	t.Fatalf("no expectation for %s", eventType)
	return expected{}
}

// reviewEvent is the event a starting pull request payload must become.
func reviewEvent(p examplePayload, deliveryID string) event.Event {
	pr := p.PullRequest
	return event.Event{
		Kind: event.KindReview, Repo: p.Repository.FullName, DeliveryID: deliveryID,
		Ref:    fmt.Sprintf("refs/pull/%d/head", pr.Number),
		Branch: pr.Head.Ref, Commit: pr.Head.SHA, Before: p.Before,
		Sender: p.Sender.Login, Message: pr.Title,
		PullRequest: &event.PullRequest{
			Number: pr.Number, Title: pr.Title,
			SourceBranch: pr.Head.Ref, TargetBranch: pr.Base.Ref,
			SourceCommit: pr.Head.SHA, TargetCommit: pr.Base.SHA,
			SourceCloneURL: pr.Head.Repo.CloneURL,
			Fork:           pr.Head.Repo.FullName != pr.Base.Repo.FullName,
			Author:         pr.User.Login, AuthorAssociation: pr.AuthorAssociation,
		},
	}
}

// started is the outcome of a delivery that starts exactly one pipeline.
func started(pipeline string, ev event.Event) expected {
	return expected{
		Status: http.StatusOK,
		Resp:   Response{Started: []StartedRun{{Pipeline: pipeline, WorkflowID: "kiln/" + pipeline + "/" + ev.DeliveryID}}},
		Starts: []startCall{{Pipeline: pipeline, Event: ev}},
	}
}

// TestCorpus delivers every real payload of the corpus, signed, through the
// handler and checks the answer and the runs started against expectations
// read from the payload itself.
func TestCorpus(t *testing.T) {
	examples := loadCorpus(t)
	var repos []string
	seen := map[string]bool{}
	for _, ex := range examples {
		var p examplePayload
		require.NoError(t, json.Unmarshal(ex.Body, &p), "%s #%d", ex.Event, ex.Index)
		if p.Repository != nil && !seen[p.Repository.FullName] {
			seen[p.Repository.FullName] = true
			repos = append(repos, p.Repository.FullName)
		}
	}
	cfg := pipelinesFor(repos...)
	outcomes := map[int]int{}
	for _, ex := range examples {
		t.Run(fmt.Sprintf("%s/%d", ex.Event, ex.Index), func(t *testing.T) {
			delivery := fmt.Sprintf("corpus-%s-%d", ex.Event, ex.Index)
			want := expect(t, ex.Event, delivery, ex.Body)
			h, starter, _ := newTestHandler(t, cfg)
			status, resp := serve(t, h, newDelivery(ex.Event, delivery, ex.Body))
			assert.Equal(t, want.Status, status)
			assert.Equal(t, want.Resp, resp)
			assert.Equal(t, want.Starts, withoutDeadlines(t, starter.Calls()))
			outcomes[status]++
		})
	}
	t.Logf("corpus outcomes by status: %v", outcomes)
	for _, s := range []int{http.StatusOK, http.StatusAccepted} {
		assert.NotZero(t, outcomes[s], "no corpus example answered %d", s)
	}
}
