package codecommit

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// FuzzIntake: no authentic body makes the CodeCommit intake answer 5xx or
// panic. Seeds are the testdata events.
func FuzzIntake(f *testing.F) {
	for _, b := range intaketest.Corpus(f, filepath.Join("testdata", "*.json")) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, _, _ := newTestHandler(t, testConfig("widget"))
		intaketest.FuzzAnswer(t, h, "/hooks/codecommit", body, func(r *http.Request, _ []byte) {
			r.Header.Set(TokenHeader, testToken)
		})
	})
}
