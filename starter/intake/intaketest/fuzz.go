package intaketest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzAnswer serves one delivery of body through h and fails t when kiln
// answers it with anything but the answers a delivery may get: 200, 202,
// 400, 401, 403 or 413. A 5xx, a panic or another status for some body is
// a bug. sign sets the headers that make the delivery authentic, so the
// body reaches the payload's parsing.
func FuzzAnswer(t *testing.T, h http.Handler, path string, body []byte, sign func(*http.Request, []byte)) {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sign(r, body)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	switch rec.Code {
	case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized,
		http.StatusForbidden, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("answered %d to %q: %s", rec.Code, body, rec.Body.String())
	}
}

// Corpus reads the files matching glob, the seeds of a fuzz target.
func Corpus(f *testing.F, glob string) [][]byte {
	f.Helper()
	names, err := filepath.Glob(glob)
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds match %s: %v", glob, err)
	}
	out := make([][]byte, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
