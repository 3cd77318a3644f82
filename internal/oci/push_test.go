package oci_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

func TestPushIsIdempotent(t *testing.T) {
	reg := newTestRegistry(t)
	reg.pushRandomBase(t, "acme/base:1")
	dir := writeFiles(t, map[string]string{"app": "bin", "config.yaml": "a: 1\n"})
	p := reg.pusher(testPassword)
	ctx := context.Background()
	repo := reg.host + "/acme/app"
	tags := []string{"main", "latest", "0123456"}

	img, err := p.Build(ctx, appImage(dir, reg.host+"/acme/base:1"))
	require.NoError(t, err)
	reg.reset()
	var written, total, calls int64
	p.Progress = func(w, t int64) { written, total, calls = w, t, calls+1 }
	first, err := p.Push(ctx, repo, img, moving(tags...))
	require.NoError(t, err)
	assert.Positive(t, calls, "progress reported while blobs went up")
	assert.Positive(t, total)
	assert.Equal(t, total, written, "the last progress report is the whole push")
	assert.Equal(t, tags, first.Tags)
	assert.Empty(t, first.Skipped)
	assert.Equal(t, 3, reg.count("/manifests/", http.MethodPut), "one manifest PUT per tag")
	assert.Positive(t, reg.blobUploads(), "the new layer and config went up")
	for _, tag := range tags {
		d, err := reg.pull(t, "acme/app:"+tag).Digest()
		require.NoError(t, err)
		assert.Equal(t, first.Digest, d.String(), tag)
	}

	// A retried activity rebuilds the same image and pushes it again.
	again, err := p.Build(ctx, appImage(dir, reg.host+"/acme/base:1"))
	require.NoError(t, err)
	reg.reset()
	calls = 0
	second, err := p.Push(ctx, repo, again, moving(tags...))
	require.NoError(t, err)
	assert.Zero(t, calls, "nothing to upload, no progress")
	assert.Equal(t, first.Digest, second.Digest)
	assert.Empty(t, second.Tags)
	assert.Equal(t, tags, second.Skipped)
	assert.Zero(t, reg.blobUploads(), "no blob uploads on a re-push")
	assert.Zero(t, reg.count("/manifests/", http.MethodPut), "no manifest writes on a re-push")
	assert.Equal(t, 3, reg.count("/manifests/", http.MethodHead), "one HEAD per tag")

	// A new tag for the same image is one manifest PUT and no blobs.
	reg.reset()
	third, err := p.Push(ctx, repo, again, moving(append(tags, "v1.2.3")...))
	require.NoError(t, err)
	assert.Equal(t, []string{"v1.2.3"}, third.Tags)
	assert.Equal(t, tags, third.Skipped)
	assert.Zero(t, reg.blobUploads())
	assert.Equal(t, 1, reg.count("/manifests/", http.MethodPut))
}

// moving makes Moving tags of names.
func moving(names ...string) []oci.Tag {
	var tags []oci.Tag
	for _, n := range names {
		tags = append(tags, oci.Tag{Name: n, Policy: oci.Moving})
	}
	return tags
}

func TestPushMovesATagToANewDigest(t *testing.T) {
	reg := newTestRegistry(t)
	p := reg.pusher(testPassword)
	ctx := context.Background()
	dir := writeFiles(t, map[string]string{"app": "v1"})
	build := func() oci.Image {
		return oci.Image{Files: []oci.File{{Source: dir + "/app", Target: "/app"}}}
	}
	img1, err := p.Build(ctx, build())
	require.NoError(t, err)
	_, err = p.Push(ctx, reg.host+"/acme/app", img1, moving("latest"))
	require.NoError(t, err)

	writeFile(t, dir+"/app", "v2")
	img2, err := p.Build(ctx, build())
	require.NoError(t, err)
	res, err := p.Push(ctx, reg.host+"/acme/app", img2, moving("latest"))
	require.NoError(t, err)
	assert.Equal(t, []string{"latest"}, res.Tags, "latest moved, not skipped")
	d, err := reg.pull(t, "acme/app:latest").Digest()
	require.NoError(t, err)
	assert.Equal(t, res.Digest, d.String())
}

func TestPushUnauthorized(t *testing.T) {
	reg := newTestRegistry(t)
	img, err := (&oci.Pusher{}).Build(context.Background(), oci.Image{})
	require.NoError(t, err)
	const wrong = "not-the-password-42"

	for name, p := range map[string]*oci.Pusher{
		"WrongPassword": reg.pusher(wrong),
		"NoCredentials": {},
		"WrongToken":    {Auth: map[string]oci.Auth{reg.host: {Token: wrong}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Push(context.Background(), reg.host+"/acme/app", img, moving("latest"))
			require.ErrorIs(t, err, oci.ErrUnauthorized)
			assert.NotErrorIs(t, err, oci.ErrNotFound)
			assert.NotContains(t, err.Error(), wrong)
			assert.Contains(t, err.Error(), reg.host+"/acme/app:latest", "names registry and repository")
			assert.Zero(t, reg.count("/manifests/", http.MethodPut))
		})
	}
}

func TestPushRejectsBadInput(t *testing.T) {
	img, err := (&oci.Pusher{}).Build(context.Background(), oci.Image{})
	require.NoError(t, err)
	_, err = (&oci.Pusher{}).Push(context.Background(), "Registry.example.com/UPPER", img, moving("x"))
	assert.Error(t, err)
	_, err = (&oci.Pusher{}).Push(context.Background(), "registry.example.com/app", img, nil)
	assert.ErrorContains(t, err, "no tags")
	_, err = (&oci.Pusher{}).Push(context.Background(), "registry.example.com/app", img, moving("bad:tag"))
	assert.ErrorContains(t, err, `tag "bad:tag"`)
}

func TestAuthPrintsNoSecrets(t *testing.T) {
	for _, a := range []oci.Auth{{Username: "u", Password: "p4ssw0rd"}, {Token: "p4ssw0rd"}} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			assert.NotContains(t, fmt.Sprintf(format, a), "p4ssw0rd", format)
			assert.NotContains(t, fmt.Sprintf(format, map[string]oci.Auth{"h": a}), "p4ssw0rd", format)
		}
	}
}

// TestErrorsRedactEchoedSecrets: a registry that quotes the credentials in
// its error body must not get them into kiln's errors, which end up in logs
// and the Temporal UI.
func TestErrorsRedactEchoedSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"password %s is wrong"}]}`, pass)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const secret = "s3cret-echoed-back"
	p := &oci.Pusher{Auth: map[string]oci.Auth{host: {Username: "u", Password: secret}}}

	_, err := p.Build(context.Background(), oci.Image{Base: host + "/acme/base:1"})
	require.ErrorIs(t, err, oci.ErrUnauthorized)
	assert.NotContains(t, err.Error(), secret)
	assert.Contains(t, err.Error(), "password [redacted] is wrong")
	for e := err; e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), secret)
	}
}
