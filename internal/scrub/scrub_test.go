package scrub

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	key := "-----BEGIN KEY-----\nMIIEowIBAAKCAQEA1xyz\n-----END KEY-----"
	s := New([]string{"", "pw", "pw-longer", key}, strings.ToUpper)
	cases := map[string]string{
		"x pw y":                  "x <sensitive> y",
		"a pw-longer b":           "a <sensitive> b",
		"PW-LONGER":               "<sensitive>",
		"nothing":                 "nothing",
		"k: MIIEowIBAAKCAQEA1xyz": "k: <sensitive>",
		"-----":                   "-----",
	}
	for in, want := range cases {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var none *Scrubber = New([]string{""})
	if none != nil || none.String("pw") != "pw" {
		t.Errorf("New with no secrets = %v, want a nil Scrubber that changes nothing", none)
	}
}

// TestWriterSplitSecret writes a secret a byte at a time, and split at every
// point between two writes: it never reaches the output, and everything
// else does once flushed.
func TestWriterSplitSecret(t *testing.T) {
	const secret = "hunter2-is-the-secret"
	text := "before " + secret + " middle " + secret + "\nafter"
	want := "before <sensitive> middle <sensitive>\nafter"
	s := New([]string{secret})
	for cut := 0; cut <= len(text); cut++ {
		var out strings.Builder
		w := s.Writer(&out)
		w.Write([]byte(text[:cut]))
		w.Write([]byte(text[cut:]))
		if strings.Contains(out.String(), "hunter2") {
			t.Fatalf("cut %d: the secret passed before Flush: %q", cut, out.String())
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("cut %d: got %q, want %q", cut, out.String(), want)
		}
	}
	var out strings.Builder
	w := s.Writer(&out)
	for i := range len(text) {
		w.Write([]byte{text[i]})
	}
	w.Flush()
	if out.String() != want {
		t.Fatalf("byte by byte: got %q, want %q", out.String(), want)
	}
}
