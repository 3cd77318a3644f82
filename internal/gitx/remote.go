package gitx

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
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
	// The worker's own GIT_CONFIG_* entries (a proxy, a CA) are kept: the
	// header is added after them.
	n, _ := strconv.Atoi(os.Getenv("GIT_CONFIG_COUNT"))
	if n < 0 {
		n = 0
	}
	g.env = append(g.env, "GIT_CONFIG_COUNT="+strconv.Itoa(n+1),
		fmt.Sprintf("GIT_CONFIG_KEY_%d=http.%s://%s/.extraHeader", n, u.Scheme, u.Host),
		fmt.Sprintf("GIT_CONFIG_VALUE_%d=Authorization: Basic %s", n, basic))
	g.secrets = append(g.secrets, basic, r.Password)
	slices.SortFunc(g.secrets, func(a, b string) int { return len(b) - len(a) })
	return g
}
