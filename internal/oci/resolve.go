package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Pin returns ref pinned by digest, "<repository>@sha256:…", with the
// repository spelt as ref spells it. The digest is the registry's for the
// reference: an image index for a multi-platform tag, so the runtime still
// picks its platform. A ref that already names a digest is checked to exist.
// The registry's refusal is ErrUnauthorized, a missing image ErrNotFound, a
// reference that does not parse ErrInvalid.
func (p *Pusher) Pin(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref, p.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("image %q: %w: %w", ref, ErrInvalid, err)
	}
	desc, err := remote.Head(r, p.remoteOptions(ctx)...)
	if err != nil && !isNotFound(err) && !isRefused(err) {
		// Some registries answer HEAD without a digest header, or not at all.
		var got *remote.Descriptor
		if got, err = remote.Get(r, p.remoteOptions(ctx)...); err == nil {
			desc = &got.Descriptor
		}
	}
	if err != nil {
		return "", classify(err, "resolve", r.Name(), p.secrets())
	}
	return repositoryPart(ref) + "@" + desc.Digest.String(), nil
}

// repositoryPart is ref without its tag and digest, as written: pinning
// "alpine:3.20" gives "alpine@sha256:…", not ggcr's
// "index.docker.io/library/alpine@sha256:…".
func repositoryPart(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// isRefused reports whether err is the registry refusing the credentials.
func isRefused(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden)
}
