// Package awsproxy is a recording, fault-injecting reverse proxy for AWS
// query and JSON APIs. Tests point AWS_ENDPOINT_URL at it, with moto behind
// it, to assert on what kiln actually sent (parameters moto ignores, such as
// ClientToken or KmsKeyId) and to inject throttling, 5xx, resets, outages,
// delays and rewritten responses (e.g. AMIs that stay pending).
//
// It also fills a gap in moto's model of accounts. moto acts in the account
// that an AssumeRole access key belongs to, but its CopyImage looks for the
// source AMI only in the caller's own account, so an AMI shared with another
// account can never be copied there. ShareAcrossAccounts makes such a copy
// work as on AWS: the proxy notes the launch permissions granted through
// ModifyImageAttribute, and when a grantee copies a shared AMI, it registers
// a stand-in image in the grantee's account (moto's x-moto-account-id
// header) and points the CopyImage at it. Requests() still shows what the
// client sent.
package awsproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RewriteFunc returns the body to send instead of body for req.
type RewriteFunc func(req Request, body []byte) []byte

// Proxy forwards AWS API calls to a target endpoint and records them.
type Proxy struct {
	// URL is the proxy's base URL, the value for AWS_ENDPOINT_URL.
	URL string

	target   *url.URL
	client   *http.Client
	mu       sync.Mutex
	requests []Request
	rules    []*Rule
	delays   map[string]time.Duration
	rewrites map[string][]RewriteFunc
	accounts map[string]string // access key ID → account, from AssumeRole
	sharing  *sharing          // nil until ShareAcrossAccounts
	answers  map[string]func(Request) []byte
}

// Start runs a proxy in front of target (e.g. a moto_server URL) until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("awsproxy target %q: %v", target, err)
	}
	p := &Proxy{
		target:   u,
		client:   &http.Client{Transport: &http.Transport{}},
		delays:   map[string]time.Duration{},
		rewrites: map[string][]RewriteFunc{},
		accounts: map[string]string{},
	}
	p.Rewrite("AssumeRole", p.learnAccount)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Requests returns a copy of every request recorded so far, oldest first.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Count returns how many recorded requests have the action ("" for any) and
// satisfy match (nil for all).
func (p *Proxy) Count(action string, match func(Request) bool) int {
	n := 0
	for _, r := range p.Requests() {
		if (action == "" || r.Action == action) && (match == nil || match(r)) {
			n++
		}
	}
	return n
}

// Fail adds a fault rule. Rules are tried in the order added; the first one
// that still has Times left applies.
func (p *Proxy) Fail(rule Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &rule)
}

// ClearFaults drops all fault rules, e.g. to bring a Down region back.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Delay holds every request for action d before forwarding it.
func (p *Proxy) Delay(action string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delays[action] = d
}

// Rewrite passes every successful response body for action through fn.
// Several rewrites for one action run in the order added.
func (p *Proxy) Rewrite(action string, fn func(req Request, body []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrites[action] = append(p.rewrites[action], fn)
}

// ServeHTTP records r, injects a fault if a rule says so, and otherwise
// forwards it to the target.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req := parseRequest(r, body)
	req.Account = p.accountFor(r, req)
	kind, delay := p.plan(req)
	sleepCtx(r, delay)
	req.Fault = kind
	// The request is recorded before the client can see any answer, so a
	// test that counts requests right after a call returns sees them all.
	rw := &recordingWriter{ResponseWriter: w, record: func(status int) {
		req.Status = status
		p.mu.Lock()
		p.requests = append(p.requests, req)
		p.mu.Unlock()
	}}
	switch {
	case kind != None:
		inject(rw, req, kind)
	case p.answer(rw, req):
	default:
		p.forward(rw, r, req)
	}
	rw.answered(0)
}

// recordingWriter calls record once, with the status, just before the first
// byte of the answer is sent or the connection is taken over to be reset.
type recordingWriter struct {
	http.ResponseWriter
	record func(status int)
	done   bool
}

func (w *recordingWriter) answered(status int) {
	if !w.done {
		w.done = true
		w.record(status)
	}
}

func (w *recordingWriter) WriteHeader(status int) {
	w.answered(status)
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.answered(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Hijack is how a Reset fault drops the connection: status 0.
func (w *recordingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.answered(0)
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

// plan decides, under the lock, which fault (if any) and delay apply to req,
// consuming one of the matching rule's Times.
func (p *Proxy) plan(req Request) (Kind, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delay := p.delays[req.Action]
	for _, rule := range p.rules {
		if rule.matches(req) {
			if rule.Times > 0 {
				rule.Times--
			}
			return rule.Kind, delay
		}
	}
	return None, delay
}

// forward sends req to the target with the original Host header and body
// bytes, so SigV4 signatures still verify (unless ShareAcrossAccounts must
// rewrite the body; moto does not check them), and relays the (possibly
// rewritten) answer. It returns the status sent to the client.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, req Request) int {
	body, err := p.outgoingBody(r.Context(), req)
	if err != nil {
		return writeError(w, req, http.StatusBadGateway, "ProxyError", err.Error())
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.targetURL(r), bytes.NewReader(body))
	if err != nil {
		return writeError(w, req, http.StatusBadGateway, "ProxyError", err.Error())
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Accept-Encoding") // let the transport decompress, so rewrites see plain text
	out.Host = r.Host
	resp, err := p.client.Do(out)
	if err != nil {
		return writeError(w, req, http.StatusBadGateway, "ProxyError", err.Error())
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return writeError(w, req, http.StatusBadGateway, "ProxyError", err.Error())
	}
	req.Status = resp.StatusCode
	respBody = p.rewrite(req, respBody)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Encoding")
	w.Header().Set("Content-Length", strconv.Itoa(len(respBody)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
	return resp.StatusCode
}

// targetURL is r's path and query on the target endpoint.
func (p *Proxy) targetURL(r *http.Request) string {
	u := *p.target
	u.Path = r.URL.Path
	u.RawPath = r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	return u.String()
}

// rewrite applies the action's rewrites to a successful response body.
func (p *Proxy) rewrite(req Request, body []byte) []byte {
	if req.Status != http.StatusOK {
		return body
	}
	p.mu.Lock()
	fns := append([]RewriteFunc(nil), p.rewrites[req.Action]...)
	p.mu.Unlock()
	for _, fn := range fns {
		body = fn(req, body)
	}
	return body
}
