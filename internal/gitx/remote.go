package gitx

import (
	"encoding/base64"
	"io"
	"net/url"
	"slices"
)

// Remote is a repository to fetch from. For an http(s) URL, Username and
// Password (a token) log in with HTTP basic auth; they reach git in its
// environment only (never its argv, a .git/config or an error), and only
// for requests to the URL's own host.
type Remote struct {
	URL                string
	Username, Password string
}

// String is the URL without any password, so a Remote printed by mistake
// shows none.
func (r Remote) String() string { return Redact(r.URL) }

// gitFor is how to run git against r: the auth header in the environment,
// and every form of the secrets scrubbed from output and errors.
func (r Remote) gitFor(dir string, log io.Writer) git {
	g := git{dir: dir, log: log, secrets: secretsOf(r.URL)}
	if r.Password == "" {
		return g
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return g
	}
	basic := base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	// http.<url>.extraHeader applies to URLs under that prefix only: a
	// redirect or submodule elsewhere does not get the token.
	g.env = append(g.env, "GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http."+u.Scheme+"://"+u.Host+"/.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	g.secrets = append(g.secrets, basic, r.Password)
	slices.SortFunc(g.secrets, func(a, b string) int { return len(b) - len(a) })
	return g
}
