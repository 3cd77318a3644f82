package bitbucket

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// FuzzIntake: no signed body makes the Bitbucket intake answer 5xx or
// panic. Seeds are Bitbucket's own payloads.
func FuzzIntake(f *testing.F) {
	for _, b := range intaketest.Corpus(f, filepath.Join("testdata", "*.json")) {
		f.Add(b, "repo:push")
		f.Add(b, "pullrequest:created")
	}
	f.Fuzz(func(t *testing.T, body []byte, eventKey string) {
		h, _ := handler(t)
		intaketest.FuzzAnswer(t, h, "/hooks/bitbucket", body, func(r *http.Request, body []byte) {
			r.Header.Set("X-Event-Key", eventKey)
			r.Header.Set("X-Request-UUID", delivery)
			r.Header.Set("X-Hub-Signature", sign(body, secret))
		})
	})
}
