package oci_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

const otherCommit = "0123456fffffffffffffffffffffffffffffffff" // same short SHA as commit

// buildAt builds a one-file image of content labelled with the commit it
// was built from, and returns it with its digest.
func buildAt(t *testing.T, p *oci.Pusher, content, revision string) (v1.Image, string) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"app": content})
	img, err := p.Build(context.Background(), oci.Image{
		Files:  []oci.File{{Source: dir + "/app", Target: "/app"}},
		Labels: map[string]string{oci.RevisionLabel: revision},
	})
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	return img, d.String()
}

func (tr *testRegistry) digestOf(t *testing.T, ref string) string {
	t.Helper()
	d, err := tr.pull(t, ref).Digest()
	require.NoError(t, err)
	return d.String()
}

// TestWriteOnceTagIsNotMovedToAnotherCommit: a commit whose short SHA
// collides with a released one's cannot take its tag. A branch run fails
// before writing anything, naming the tag and both digests; a review run
// leaves the tag and pushes the rest.
func TestWriteOnceTagIsNotMovedToAnotherCommit(t *testing.T) {
	reg := newTestRegistry(t)
	p := reg.pusher(testPassword)
	ctx := context.Background()
	repo := reg.host + "/acme/app"
	release, releaseDigest := buildAt(t, p, "release", commit)
	_, err := p.Push(ctx, repo, release, []oci.Tag{{Name: "0123456", Policy: oci.WriteOnce}})
	require.NoError(t, err)

	fork, forkDigest := buildAt(t, p, "fork", otherCommit)
	reg.reset()
	_, err = p.Push(ctx, repo, fork, []oci.Tag{{Name: "dev", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}})
	require.ErrorIs(t, err, oci.ErrTagConflict)
	assert.Contains(t, err.Error(), repo+":0123456")
	assert.Contains(t, err.Error(), releaseDigest)
	assert.Contains(t, err.Error(), forkDigest)
	assert.Contains(t, err.Error(), commit, "names the commit the tag is for")
	assert.Zero(t, reg.count("/manifests/", http.MethodPut), "nothing written, not even the moving tag")
	assert.Equal(t, releaseDigest, reg.digestOf(t, "acme/app:0123456"))

	res, err := p.Push(ctx, repo, fork, []oci.Tag{{Name: "pr-7", Policy: oci.Moving}, {Name: "0123456", Policy: oci.IfAbsent}})
	require.NoError(t, err)
	assert.Equal(t, []string{"pr-7"}, res.Tags)
	assert.Equal(t, []string{"0123456"}, res.Kept)
	assert.Equal(t, releaseDigest, reg.digestOf(t, "acme/app:0123456"), "the review run did not move it")
	assert.Equal(t, forkDigest, reg.digestOf(t, "acme/app:pr-7"))

	// A missing if-absent tag is written.
	res, err = p.Push(ctx, repo, fork, []oci.Tag{{Name: "fffffff", Policy: oci.IfAbsent}})
	require.NoError(t, err)
	assert.Equal(t, []string{"fffffff"}, res.Tags)
}

// TestWriteOnceTagKeptOnRebuild: the same commit rebuilt (an image trigger
// on a newer base) keeps its first image under the write-once tag and
// moves the moving ones.
func TestWriteOnceTagKeptOnRebuild(t *testing.T) {
	reg := newTestRegistry(t)
	p := reg.pusher(testPassword)
	ctx := context.Background()
	repo := reg.host + "/acme/app"
	first, firstDigest := buildAt(t, p, "on base 1", commit)
	_, err := p.Push(ctx, repo, first, []oci.Tag{{Name: "latest", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}})
	require.NoError(t, err)

	rebuilt, rebuiltDigest := buildAt(t, p, "on base 2", commit)
	res, err := p.Push(ctx, repo, rebuilt, []oci.Tag{{Name: "latest", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}})
	require.NoError(t, err)
	assert.Equal(t, []string{"latest"}, res.Tags)
	assert.Equal(t, []string{"0123456"}, res.Kept)
	assert.Equal(t, rebuiltDigest, reg.digestOf(t, "acme/app:latest"))
	assert.Equal(t, firstDigest, reg.digestOf(t, "acme/app:0123456"))
}

// TestForwardTagsDoNotMoveBack: after v1.2.0, a backport v1.1.5 moves 1.1
// but not 1; pre-releases do not count as newer; v1.2.1 moves both again.
func TestForwardTagsDoNotMoveBack(t *testing.T) {
	reg := newTestRegistry(t)
	p := reg.pusher(testPassword)
	ctx := context.Background()
	repo := reg.host + "/acme/app"
	publish := func(version string) (oci.PushResult, string) {
		t.Helper()
		img, digest := buildAt(t, p, version, commit)
		tags, err := oci.Tags(oci.TagRules{SemverMinor: true, SemverMajor: true, ShortSHA: new(bool)},
			oci.TagInput{Kind: "tag", Tag: version, Commit: commit})
		require.NoError(t, err)
		res, err := p.Push(ctx, repo, img, tags)
		require.NoError(t, err)
		return res, digest
	}

	res, v120 := publish("v1.2.0")
	assert.Equal(t, []string{"v1.2.0", "1.2", "1"}, res.Tags, "an empty repository: nothing is newer")
	_, _ = publish("v1.10.0-rc.1")

	res, v115 := publish("v1.1.5")
	assert.Equal(t, []string{"v1.1.5", "1.1"}, res.Tags)
	assert.Equal(t, []string{"1"}, res.Behind)
	assert.Equal(t, v120, reg.digestOf(t, "acme/app:1"), "1 stays at 1.2.0")
	assert.Equal(t, v115, reg.digestOf(t, "acme/app:1.1"))

	res, v121 := publish("1.2.1") // a release tag without the v counts the same
	assert.Equal(t, []string{"1.2.1", "1.2", "1"}, res.Tags)
	assert.Empty(t, res.Behind)
	assert.Equal(t, v121, reg.digestOf(t, "acme/app:1"))

	res, _ = publish("v1.2.0") // the old release again, as a retry would
	assert.Equal(t, []string{"1.2", "1"}, res.Behind)
	assert.Equal(t, []string{"v1.2.0"}, res.Skipped)
	assert.Equal(t, v121, reg.digestOf(t, "acme/app:1.2"))

	res, _ = publish("v1.9.0") // 9 > 2 by number, though "9" > "10" by text
	assert.Equal(t, []string{"v1.9.0", "1.9", "1"}, res.Tags)
	res, _ = publish("v1.10.0")
	assert.Equal(t, []string{"v1.10.0", "1.10", "1"}, res.Tags)
	res, _ = publish("v1.9.1")
	assert.Equal(t, []string{"1"}, res.Behind)
}

// TestInvalidRegistryAnswersArePermanent: tag, name and manifest refusals
// (ECR's immutable tags among them) are ErrInvalid; a manifest whose blob
// went missing is not, since the next attempt uploads it.
func TestInvalidRegistryAnswersArePermanent(t *testing.T) {
	cases := map[string]bool{
		`{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}`: true,
		`{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`:                                                                                                    true,
		`{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}`:                                                                                                 true,
		`{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`:                                                                                       false,
	}
	for body, invalid := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/"):
				w.WriteHeader(http.StatusOK) // every blob is there already
			case r.Method == http.MethodGet && r.URL.Path == "/v2/":
				w.WriteHeader(http.StatusOK)
			default:
				w.WriteHeader(http.StatusNotFound)
			}
		}))
		host := strings.TrimPrefix(srv.URL, "http://")
		img, _ := buildAt(t, &oci.Pusher{}, "x", commit)
		_, err := (&oci.Pusher{}).Push(context.Background(), host+"/acme/app", img, []oci.Tag{{Name: "v1", Policy: oci.Moving}})
		srv.Close()
		require.Error(t, err, body)
		assert.Equal(t, invalid, errors.Is(err, oci.ErrInvalid), body)
		assert.NotErrorIs(t, err, oci.ErrNotFound, body)
		assert.Contains(t, err.Error(), host+"/acme/app:v1", "names the tag")
		if strings.Contains(body, "immutable") {
			assert.Contains(t, err.Error(), "tags are immutable")
		}
	}
}

// TestForwardTagsHeldWhenTagsCannotBeListed: a registry that refuses to list
// tags (ECR without ecr:ListImages) does not fail the release: its exact
// version is pushed, X.Y and X are held back, since they might move back.
func TestForwardTagsHeldWhenTagsCannotBeListed(t *testing.T) {
	reg := newTestRegistry(t)
	reg.denyList = true
	p := reg.pusher(testPassword)
	img, digest := buildAt(t, p, "v1.2.0", commit)
	tags, err := oci.Tags(oci.TagRules{SemverMinor: true, SemverMajor: true, ShortSHA: new(bool)},
		oci.TagInput{Kind: "tag", Tag: "v1.2.0", Commit: commit})
	require.NoError(t, err)
	res, err := p.Push(context.Background(), reg.host+"/acme/app", img, tags)
	require.NoError(t, err)
	assert.Equal(t, []string{"v1.2.0"}, res.Tags)
	assert.Equal(t, []string{"1.2", "1"}, res.Behind)
	assert.Equal(t, digest, reg.digestOf(t, "acme/app:v1.2.0"))
	assert.Positive(t, reg.count("/tags/list", http.MethodGet), "the listing was tried")
}
