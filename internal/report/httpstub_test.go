package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The stub registry follows cli/cli's httpmock: tests register the exact
// requests they expect, each answered once; a request no stub matches fails
// the test, and so does a stub no request used.

// matcher decides whether a stub answers req; body is the request body.
type matcher func(req *http.Request, body []byte) bool

// responder builds the stub's response.
type responder func(req *http.Request) *http.Response

type stub struct {
	desc    string
	match   matcher
	respond responder
	used    bool
}

// recorded is one request the registry answered.
type recorded struct {
	Method string
	Host   string
	Path   string // path and query, e.g. "/repos/o/r/issues/7/comments?per_page=100"
	Header http.Header
	Body   []byte
}

// tester is the part of *testing.T the registry uses, so a test can check
// that the registry itself reports failures.
type tester interface {
	Errorf(format string, args ...any)
	Cleanup(func())
}

// registry is an http.RoundTripper that answers only registered requests.
type registry struct {
	t        tester
	mu       sync.Mutex
	stubs    []*stub
	requests []recorded
}

// newRegistry returns a registry that, when the test ends, fails it for
// every stub that was never used.
func newRegistry(t tester) *registry {
	r := &registry{t: t}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range r.stubs {
			if !s.used {
				t.Errorf("stub never used: %s", s.desc)
			}
		}
	})
	return r
}

// register adds a one-shot stub. Stubs are tried in registration order.
func (r *registry) register(desc string, m matcher, resp responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stubs = append(r.stubs, &stub{desc: desc, match: m, respond: resp})
}

// client is an *http.Client whose transport is the registry.
func (r *registry) client() *http.Client { return &http.Client{Transport: r} }

// RoundTrip implements http.RoundTripper.
func (r *registry) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, recorded{
		Method: req.Method, Host: req.URL.Host, Path: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body,
	})
	for _, s := range r.stubs {
		if !s.used && s.match(req, body) {
			s.used = true
			resp := s.respond(req)
			resp.Request = req
			return resp, nil
		}
	}
	r.t.Errorf("no stub for %s %s body=%s", req.Method, req.URL.String(), body)
	return nil, fmt.Errorf("no stub for %s %s", req.Method, req.URL.Path)
}

// calls lists the requests as "METHOD /path?query", in order.
func (r *registry) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.requests))
	for i, q := range r.requests {
		out[i] = q.Method + " " + q.Path
	}
	return out
}

// all returns every recorded request.
func (r *registry) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

// rest matches method and path exactly, and the query when query is not
// nil ("" matches an empty query).
func rest(method, path string, query *string) matcher {
	return func(req *http.Request, _ []byte) bool {
		if req.Method != method || req.URL.Path != path {
			return false
		}
		return query == nil || req.URL.RawQuery == canonicalQuery(*query)
	}
}

// canonicalQuery sorts q's parameters the way url.Values.Encode does,
// which is how go-github builds its queries.
func canonicalQuery(q string) string {
	v, err := url.ParseQuery(q)
	if err != nil {
		panic(err)
	}
	return v.Encode()
}

func q(s string) *string { return &s }

// withJSON narrows m to requests whose body is JSON equal to want.
func withJSON(m matcher, want map[string]any) matcher {
	return func(req *http.Request, body []byte) bool {
		if !m(req, body) {
			return false
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			return false
		}
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got)
		return bytes.Equal(wantJSON, gotJSON)
	}
}

// jsonResponse answers with status, body marshalled to JSON, and headers
// given as "Name", "value" pairs.
func jsonResponse(status int, body any, headers ...string) responder {
	return func(*http.Request) *http.Response {
		data, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(headers); i += 2 {
			h.Add(headers[i], headers[i+1])
		}
		return &http.Response{
			StatusCode: status,
			Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header:     h,
			Body:       io.NopCloser(strings.NewReader(string(data))),
		}
	}
}

// decode unmarshals a recorded JSON body.
func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	return m
}
