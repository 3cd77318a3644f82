package codecommit

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// FuzzIntake: no authentic body makes the CodeCommit intake answer 5xx or
// panic. Seeds are the testdata events.
func FuzzIntake(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, _, _ := newTestHandler(t, testConfig("widget"))
		intaketest.FuzzAnswer(t, h, "/hooks/codecommit", body, func(r *http.Request, _ []byte) {
			r.Header.Set(TokenHeader, testToken)
		})
	})
}
