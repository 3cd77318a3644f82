package event

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxRefBytes is the longest ref kiln takes: Linux's PATH_MAX, the longest
// path a loose ref can have in a repository on disk.
const MaxRefBytes = 4096

// MaxDeliveryIDBytes is the longest delivery ID kiln takes. Every host
// sends a UUID (36 bytes); the ID is part of a workflow ID and of file names.
const MaxDeliveryIDBytes = 100

// CheckRef says what is wrong with a ref or branch name from a delivery,
// which git would not have: longer than MaxRefBytes, not UTF-8, or holding
// a control character (git refuses those in refs). Any other name git
// allows, in any script, is fine.
func CheckRef(what, ref string) error {
	if len(ref) > MaxRefBytes {
		return fmt.Errorf("%s is %d bytes long; git refs are at most %d", what, len(ref), MaxRefBytes)
	}
	if !utf8.ValidString(ref) {
		return fmt.Errorf("%s %q is not UTF-8", what, ref)
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q holds the control character %U, which git does not allow in a ref", what, ref, r)
		}
	}
	return nil
}

// CheckDeliveryID says what is wrong with a delivery ID: it must be 1 to
// MaxDeliveryIDBytes of printable ASCII, without space, '/' or '%'.
func CheckDeliveryID(id string) error {
	if id == "" {
		return fmt.Errorf("the delivery ID is empty")
	}
	if len(id) > MaxDeliveryIDBytes {
		return fmt.Errorf("the delivery ID is %d bytes long; at most %d are taken", len(id), MaxDeliveryIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '%' {
			return fmt.Errorf("the delivery ID %q holds %q; only printable ASCII without space, '/' and '%%' is taken", id, c)
		}
	}
	return nil
}

// Check says what is wrong with the names of a normalized event from a
// delivery: its delivery ID, ref and branches, and pull request number.
func (e Event) Check() error {
	if err := CheckDeliveryID(e.DeliveryID); err != nil {
		return err
	}
	for _, f := range []struct{ what, v string }{{"ref", e.Ref}, {"branch", e.Branch}, {"tag", e.Tag}} {
		if err := CheckRef(f.what, f.v); err != nil {
			return err
		}
	}
	if pr := e.PullRequest; pr != nil {
		if pr.Number <= 0 {
			return fmt.Errorf("pull request number %d: numbers start at 1", pr.Number)
		}
		if err := CheckRef("source branch", pr.SourceBranch); err != nil {
			return err
		}
		if err := CheckRef("target branch", pr.TargetBranch); err != nil {
			return err
		}
		if pr.SourceRepo != "" && !IsRepoName(pr.SourceRepo) {
			return fmt.Errorf("source repository %q: want owner/name of letters, digits, '.', '-' and '_'", pr.SourceRepo)
		}
	}
	return nil
}

// IsRepoName says whether s is a plain "owner/name", safe in a URL's path:
// two parts of letters, digits, '.', '-' and '_', neither "." nor "..".
func IsRepoName(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	if !ok {
		return false
	}
	for _, part := range []string{owner, name} {
		if part == "" || part == "." || part == ".." || len(part) > 100 {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
