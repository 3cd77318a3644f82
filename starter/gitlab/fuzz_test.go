package gitlab

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// FuzzIntake: no body, authentic or not, makes the GitLab intake answer
// 5xx or panic. Seeds are GitLab's own payloads.
func FuzzIntake(f *testing.F) {
	for _, b := range intaketest.Corpus(f, filepath.Join("testdata", "*.json")) {
		f.Add(b, "Push Hook")
		f.Add(b, "Merge Request Hook")
	}
	f.Add([]byte(`{"object_kind":"push","project":{"path_with_namespace":"mike/diaspora"},"ref":"refs/heads/\u0000"}`), "Push Hook")
	f.Fuzz(func(t *testing.T, body []byte, eventType string) {
		h, _ := handler(t)
		intaketest.FuzzAnswer(t, h, "/hooks/gitlab", body, func(r *http.Request, _ []byte) {
			r.Header.Set("X-Gitlab-Event", eventType)
			r.Header.Set("X-Gitlab-Token", token)
			r.Header.Set("Idempotency-Key", "f1d2c3b4-0000-4000-8000-000000000001")
		})
	})
}
