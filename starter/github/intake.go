package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

var (
	errNoSignature  = errors.New("missing X-Hub-Signature-256 header")
	errSHA1Only     = errors.New("missing X-Hub-Signature-256 header; a sha1 X-Hub-Signature alone is not accepted")
	errBadSignature = errors.New("signature does not match")
)

// delivery is a webhook body before its signature is checked.
type delivery struct {
	// body is the request body as received, which is what GitHub signs.
	body []byte
	// payload is the JSON event: the body, or its payload field when the
	// webhook's content type is application/x-www-form-urlencoded.
	payload []byte
}

// signed returns the byte strings a valid signature may cover. GitHub signs the
// body as sent; Gitea signs the JSON payload even when it sends a form.
func (d delivery) signed() [][]byte {
	if bytes.Equal(d.payload, d.body) {
		return [][]byte{d.body}
	}
	return [][]byte{d.body, d.payload}
}

// parseDelivery extracts the JSON payload from body, as go-github's
// ValidatePayloadFromBody does. Nothing in it is trusted yet.
func parseDelivery(contentType string, body []byte) (delivery, error) {
	d := delivery{body: body, payload: body}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return d, fmt.Errorf("%w: form body: %v", ErrMalformedPayload, err)
		}
		d.payload = []byte(form.Get("payload"))
		if len(d.payload) == 0 {
			return d, fmt.Errorf("%w: form body has no payload field", ErrMalformedPayload)
		}
	}
	return d, nil
}

// repoOf checks the payload is a JSON object and reads the repository it
// names, which only selects the secret to check the delivery with.
func repoOf(payload []byte) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || !json.Valid(payload) {
			return "", fmt.Errorf("%w: %v", ErrMalformedPayload, err)
		}
		return "", fmt.Errorf("%w: the payload is not a JSON object", ErrMalformedPayload)
	}
	if len(fields) == 0 {
		return "", fmt.Errorf("%w: the payload is empty (%s)", ErrMalformedPayload, bytes.TrimSpace(payload))
	}
	var repo *struct {
		FullName string `json:"full_name"`
	}
	if raw, ok := fields["repository"]; ok {
		if err := json.Unmarshal(raw, &repo); err != nil {
			return "", fmt.Errorf("%w: repository: %v", ErrMalformedPayload, err)
		}
	}
	if repo == nil {
		return "", nil
	}
	return repo.FullName, nil
}

// verifySignature checks the delivery's HMAC-SHA256 signature against secret.
// It accepts GitHub's X-Hub-Signature-256 ("sha256=<hex>") and, only when that
// is absent, Gitea's X-Gitea-Signature (bare hex). The sha1 X-Hub-Signature is
// never enough on its own.
func verifySignature(h http.Header, secret []byte, signed ...[]byte) error {
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		// go-github would also accept "sha1=..." here; only sha256 is wanted.
		if !strings.HasPrefix(sig, "sha256=") {
			return fmt.Errorf("%w: X-Hub-Signature-256 is not sha256=<hex>", errBadSignature)
		}
		for _, m := range signed {
			if gh.ValidateSignature(sig, m, secret) == nil {
				return nil
			}
		}
		return errBadSignature
	}
	if sig := h.Get("X-Gitea-Signature"); sig != "" {
		want, err := hex.DecodeString(strings.TrimSpace(sig))
		if err != nil {
			return fmt.Errorf("%w: X-Gitea-Signature is not hex", errBadSignature)
		}
		for _, m := range signed {
			if hmac.Equal(sign(m, secret), want) {
				return nil
			}
		}
		return errBadSignature
	}
	if h.Get("X-Hub-Signature") != "" {
		return errSHA1Only
	}
	return errNoSignature
}

// sign returns the HMAC-SHA256 of m keyed with secret.
func sign(m, secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(m)
	return mac.Sum(nil)
}
