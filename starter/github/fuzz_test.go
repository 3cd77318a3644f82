package github

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// FuzzIntake: no signed body, for any event, makes the GitHub and Gitea
// intake answer 5xx or panic. Seeds are the testdata payloads.
func FuzzIntake(f *testing.F) {
	for _, b := range intaketest.Corpus(f, filepath.Join("testdata", "*.json")) {
		f.Add(b, "push")
		f.Add(b, "pull_request")
	}
	f.Add([]byte(`{"action":"created","issue":{"number":1,"pull_request":{}},"comment":{"body":"/kiln approve"},"repository":{"full_name":"acme/widget"}}`), "issue_comment")
	f.Add([]byte(`null`), "ping")
	f.Fuzz(func(t *testing.T, body []byte, eventType string) {
		h, _, _ := newTestHandler(t, pipelinesFor("acme/widget"))
		intaketest.FuzzAnswer(t, h, "/hooks/github", body, func(r *http.Request, body []byte) {
			r.Header.Set("X-GitHub-Event", eventType)
			r.Header.Set("X-GitHub-Delivery", "fuzz-1")
			r.Header.Set("X-Hub-Signature-256", hubSignature(body, testSecret))
		})
	})
}
