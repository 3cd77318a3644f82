package oci

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Auth is one registry's credentials: a username and password, or a bearer
// token. For ECR the caller gets them with ECRAuth. Its String hides the
// secrets, so printing an Auth by mistake does not leak them.
type Auth struct {
	Username, Password string
	// Token is sent as "Authorization: Bearer <token>", with no exchange.
	Token string
}

// String describes a without its secrets.
func (a Auth) String() string {
	switch {
	case a.Token != "":
		return "oci.Auth{Token: [redacted]}"
	case a.Username != "" || a.Password != "":
		return fmt.Sprintf("oci.Auth{Username: %q, Password: [redacted]}", a.Username)
	}
	return "oci.Auth{}"
}

// GoString keeps %#v from printing the secrets too.
func (a Auth) GoString() string { return a.String() }

func (a Auth) authenticator() authn.Authenticator {
	switch {
	case a.Token != "":
		return authn.FromConfig(authn.AuthConfig{RegistryToken: a.Token})
	case a.Username != "" || a.Password != "":
		return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password})
	}
	return authn.Anonymous
}

// Pusher pulls base images and pushes built ones. The zero value is
// anonymous and uses HTTPS, except to loopback registries.
type Pusher struct {
	// Auth holds credentials by registry host as image references name
	// it: "registry.example.com", "localhost:5000", "docker.io".
	Auth map[string]Auth
	// Keychain is asked for hosts not in Auth; nil means anonymous.
	// authn.DefaultKeychain reads the worker's Docker config, so it is
	// never used unless asked for.
	Keychain authn.Keychain
	// Insecure allows plain HTTP to any registry, for a local one without
	// TLS. Without it only loopback registries may be plain HTTP.
	Insecure bool
	// Transport carries the requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Progress, when set, is called as blob bytes go up during Push, with
	// the bytes written so far and the total to write. A push whose blobs
	// are all in the registry already never calls it.
	Progress func(written, total int64)
}

// PushResult is what Push did.
type PushResult struct {
	// Digest is the image's manifest digest, "sha256:…".
	Digest string
	// Tags are the tags Push pointed at Digest.
	Tags []string
	// Skipped are the tags that already pointed at Digest: nothing was
	// written for them.
	Skipped []string
	// Kept are WriteOnce and IfAbsent tags left at the other image they
	// already pointed at (see TagPolicy).
	Kept []string
	// Behind are Forward tags not moved because the repository holds a
	// newer release of their series, or refused to list its tags.
	Behind []string
}

// Push writes image to repo under tags, each as its policy allows. It is
// idempotent, so a retried activity is safe: tags already at the image's
// digest are skipped, and blobs the registry has (from the base, or an
// earlier attempt) are not uploaded again. The image is written once, under
// the first tag that needs it; the other tags are manifest PUTs only. A
// WriteOnce tag at another commit's image fails the push with
// ErrTagConflict before anything is written. On an error the result still
// says which tags were pushed or skipped before it.
func (p *Pusher) Push(ctx context.Context, repo string, image v1.Image, tags []Tag) (PushResult, error) {
	r, err := name.NewRepository(repo, p.nameOptions()...)
	if err != nil {
		return PushResult{}, fmt.Errorf("push to %q: %w: %w", repo, ErrInvalid, err)
	}
	if len(tags) == 0 {
		return PushResult{}, fmt.Errorf("push to %s: no tags", r.Name())
	}
	digest, err := image.Digest()
	if err != nil {
		return PushResult{}, fmt.Errorf("push to %s: digest the image: %w", r.Name(), err)
	}
	res := PushResult{Digest: digest.String()}
	puller, err := remote.NewPuller(p.remoteOptions(ctx)...)
	if err != nil {
		return res, fmt.Errorf("push to %s: %w", r.Name(), err)
	}
	tags, res.Behind, err = p.forward(ctx, puller, r, tags)
	if err != nil {
		return res, err
	}
	missing, err := p.missingTags(ctx, puller, r, image, digest, tags, &res)
	if err != nil || len(missing) == 0 {
		return res, err
	}
	opts := p.remoteOptions(ctx)
	if p.Progress != nil {
		updates := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates {
				if u.Error == nil {
					p.Progress(u.Complete, u.Total)
				}
			}
		}()
		// The pusher sends its last update before Push returns; only then
		// is the channel closed.
		defer func() { close(updates); <-done }()
		opts = append(opts, remote.WithProgress(updates))
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return res, fmt.Errorf("push to %s: %w", r.Name(), err)
	}
	for i, tag := range missing {
		if i == 0 {
			err = pusher.Push(ctx, tag, image)
		} else {
			err = pusher.Put(ctx, tag, image)
		}
		if err != nil {
			return res, classify(err, "push", tag.Name(), p.secrets())
		}
		res.Tags = append(res.Tags, tag.TagStr())
	}
	return res, nil
}

// missingTags returns the tags that need a push, with one manifest HEAD
// each, and records in res those already at digest and the WriteOnce and
// IfAbsent ones kept at another image. Every tag is checked before any is
// written, so a conflict fails the push with nothing moved.
func (p *Pusher) missingTags(ctx context.Context, puller *remote.Puller, r name.Repository, image v1.Image, digest v1.Hash, tags []Tag, res *PushResult) ([]name.Tag, error) {
	var missing []name.Tag
	for _, t := range dedupe(append([]Tag(nil), tags...)) {
		tag, err := name.NewTag(r.Name()+":"+t.Name, p.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("push to %s: tag %q: %w: %w", r.Name(), t.Name, ErrInvalid, err)
		}
		desc, err := puller.Head(ctx, tag)
		switch {
		case err == nil && desc.Digest == digest:
			res.Skipped = append(res.Skipped, t.Name)
		case isNotFound(err) || err == nil && t.Moves():
			missing = append(missing, tag)
		case err == nil:
			keep, err := p.keepExisting(ctx, puller, tag, t.Policy, desc.Digest, image, digest)
			if err != nil {
				return nil, err
			}
			if keep {
				res.Kept = append(res.Kept, t.Name)
			}
		default:
			return nil, classify(err, "check tag", tag.Name(), p.secrets())
		}
	}
	return missing, nil
}

func (p *Pusher) nameOptions() []name.Option {
	if p.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (p *Pusher) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain{auth: p.auth(), fallback: p.Keychain}),
		remote.WithUserAgent("kiln"),
	}
	t := p.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	if !p.Insecure {
		t = httpsOnly{t}
	}
	return append(opts, remote.WithTransport(t))
}

// Loopback reports whether a registry host (host or host:port) is this
// machine's: the only registries reached over plain HTTP unasked.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// httpsOnly refuses plain HTTP except to loopback. ggcr also falls back to
// HTTP for private (RFC 1918) addresses and *.local names, which would send
// a registry's credentials in the clear; only Insecure allows that.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !Loopback(r.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: set Insecure to allow it", r.URL.Host)
	}
	return h.next.RoundTrip(r)
}

// auth keys p.Auth by ggcr's registry name, so "docker.io" finds the
// credentials for "index.docker.io".
func (p *Pusher) auth() map[string]Auth {
	m := make(map[string]Auth, len(p.Auth))
	for host, a := range p.Auth {
		if reg, err := name.NewRegistry(host, p.nameOptions()...); err == nil {
			host = reg.RegistryStr()
		}
		m[host] = a
	}
	return m
}

// secrets are the strings no error may carry.
func (p *Pusher) secrets() []string {
	var s []string
	for _, a := range p.Auth {
		s = append(s, a.Password, a.Token)
	}
	return s
}

type keychain struct {
	auth     map[string]Auth
	fallback authn.Keychain
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k.auth[r.RegistryStr()]; ok {
		return a.authenticator(), nil
	}
	if k.fallback != nil {
		return k.fallback.Resolve(r)
	}
	return authn.Anonymous, nil
}
