package buildkit

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli/config/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/sirupsen/logrus"
)

// Client is a connection to a buildkitd. It is safe for concurrent use:
// every build and container gets a session of its own.
type Client struct {
	// Address is the daemon's address, for messages.
	Address string
	bk      *client.Client
}

// Dial connects to the buildkitd at address and checks that it answers.
func Dial(ctx context.Context, address string) (*Client, error) {
	// BuildKit's client logs through logrus (the OCI layout store warns
	// that the file system lacks fs-verity); kiln logs what matters itself.
	logrus.SetLevel(logrus.ErrorLevel)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := Ping(ctx, address); err != nil {
		return nil, fmt.Errorf("%w: buildkitd at %s does not answer: %v", ErrUnavailable, address, err)
	}
	bk, err := client.New(context.Background(), address)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, address, err)
	}
	return &Client{Address: address, bk: bk}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.bk.Close() }

// Auth is one registry's credentials: a username and password, or a bearer
// token.
type Auth struct {
	Username, Password, Token string
}

// attachables returns the session attachables every solve gets: registry credentials
// for pulls and pushes, and the secrets RUN --mount=type=secret and secret
// environment variables read. Both are answered on kiln's side of the
// session, so neither is ever part of a build definition or its cache key.
func attachables(auth map[string]Auth, secrets map[string][]byte) []session.Attachable {
	if secrets == nil {
		secrets = map[string][]byte{}
	}
	return []session.Attachable{
		authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: func(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
				a, ok := auth[host]
				if !ok && host == "registry-1.docker.io" {
					a, ok = auth["index.docker.io"]
				}
				if !ok {
					return types.AuthConfig{}, nil
				}
				return types.AuthConfig{ServerAddress: host, Username: a.Username, Password: a.Password, RegistryToken: a.Token}, nil
			},
		}),
		secretsprovider.FromMap(secrets),
	}
}

// printProgress writes BuildKit's progress as plain text lines to w until
// ch closes, and returns when it has.
func printProgress(w io.Writer, ch chan *client.SolveStatus) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if w == nil {
			for range ch {
			}
			return
		}
		d, err := progressui.NewDisplay(w, progressui.PlainMode)
		if err != nil {
			for range ch {
			}
			return
		}
		_, _ = d.UpdateFrom(context.Background(), ch)
	}()
	return done
}

// cleanError shortens BuildKit's errors, which carry gRPC wrapping and
// stack prefixes, to the part a person reads.
func cleanError(err error) string {
	msg := err.Error()
	for _, p := range []string{"rpc error: code = Unknown desc = ", "rpc error: code = Canceled desc = "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}
