package event

import "testing"

// TestFromRefHEAD: HEAD stays HEAD, the repository's default branch, whose
// name the plan fills in later.
func TestFromRefHEAD(t *testing.T) {
	var e Event
	e.FromRef("HEAD")
	if e.Ref != "HEAD" || e.Branch != "" || e.Tag != "" || e.RefLabel() != "HEAD" {
		t.Fatalf("FromRef(HEAD) = %+v, label %q", e, e.RefLabel())
	}
}
