package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// restAPI is a JSON REST API that authenticates every request with one
// header: GitLab's PRIVATE-TOKEN, Bitbucket's Authorization.
type restAPI struct {
	host          string // for errors: "GitLab"
	api           string // the base URL, ending in "/"
	header, value string
	token         string // scrubbed from every error
	http          *http.Client
}

// newRestAPI is the API at apiURL (def when empty) of host, sending token
// in header as prefix+token. hc nil means a client with a 30 s timeout.
func newRestAPI(host, apiURL, def, header, prefix, token string, hc *http.Client) (restAPI, error) {
	if apiURL == "" {
		apiURL = def
	}
	u, err := apiBase(apiURL)
	if err != nil {
		return restAPI{}, err
	}
	if token == "" {
		return restAPI{}, invalid("no token for %s", u.Redacted())
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	return restAPI{host: host, api: u.String(), header: header, value: prefix + token, token: token, http: hc}, nil
}

// stateOf is the host's state for stage on run.Commit, from states.
func stateOf(run Run, stage Stage, states map[string]string) (string, error) {
	if run.Commit == "" {
		return "", invalid("run %s has no commit to set a status on", run.RunID)
	}
	state, ok := states[stage.State]
	if !ok {
		return "", invalid("stage %s has unknown state %q", stage.Name, stage.State)
	}
	return state, nil
}

// do sends one request and decodes the answer into out. A 401 or 403 is
// ErrUnauthorized, a 404 ErrNotFound, a 400 or 422 ErrInvalid; 429 and
// 5xx stay plain errors, which the activity retries. Errors never hold the
// token.
func (g *restAPI) do(ctx context.Context, method, path string, q url.Values, in, out any, what string) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	u := path
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = g.api + path
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(g.header, g.value)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, &apiError{msg: strings.ReplaceAll(fmt.Sprintf("report: %s: %v", what, err), g.token, "***")}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		msg := fmt.Sprintf("report: %s: %s answered %s: %s", what, g.host, resp.Status, strings.TrimSpace(string(data)))
		msg = strings.ReplaceAll(msg, g.token, "***")
		var kind error
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			kind = ErrUnauthorized
		case http.StatusNotFound:
			kind = ErrNotFound
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			kind = ErrInvalid
		}
		e := &apiError{msg: msg}
		if kind != nil {
			e.errs = []error{kind}
		}
		return resp.Header, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("report: %s: %w", what, err)
		}
	}
	return resp.Header, nil
}
