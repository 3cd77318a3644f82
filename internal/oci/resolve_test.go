package oci_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

// TestPin: a tag is pinned to its digest with the repository as written;
// a digest reference is checked; refused credentials, a missing tag and a
// reference that does not parse each have their class, and no error
// carries the password.
func TestPin(t *testing.T) {
	tr := newTestRegistry(t)
	img := tr.pushRandomBase(t, "ci/build:1")
	digest, err := img.Digest()
	require.NoError(t, err)
	ctx := context.Background()
	want := tr.host + "/ci/build@" + digest.String()

	got, err := tr.pusher(testPassword).Pin(ctx, tr.host+"/ci/build:1")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got, err = tr.pusher(testPassword).Pin(ctx, want)
	require.NoError(t, err)
	assert.Equal(t, want, got, "a pinned reference stays as it is")

	for _, tc := range []struct {
		name, ref, password string
		want                error
	}{
		{"refused", tr.host + "/ci/build:1", "wrong-password", oci.ErrUnauthorized},
		{"missing tag", tr.host + "/ci/build:2", testPassword, oci.ErrNotFound},
		{"missing digest", tr.host + "/ci/build@sha256:" + strings.Repeat("0", 64), testPassword, oci.ErrNotFound},
		{"unparsable", tr.host + "/CI/Build:1", testPassword, oci.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.pusher(tc.password).Pin(ctx, tc.ref)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "%v is not %v", err, tc.want)
			assert.NotContains(t, err.Error(), "wrong-password")
			assert.NotContains(t, err.Error(), testPassword)
		})
	}
}
