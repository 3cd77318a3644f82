package ami

import (
	"context"
	"strings"
	"testing"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

func TestKilnAMINewestPassed(t *testing.T) {
	p := pipeline(t)
	c := moto.EC2("us-east-1")
	older := mototest.Image(t, c, p+"-1", tagged(p, "refs/heads/main", "c1", "passed"))
	nextSecond()
	want := mototest.Image(t, c, p+"-2", tagged(p, "refs/heads/main", "c2", "passed"))
	nextSecond()
	// Newer, but each is out for its own reason.
	mototest.Image(t, c, p+"-failed", tagged(p, "refs/heads/main", "c3", "failed"))
	mototest.Image(t, c, p+"-untested", tagged(p, "refs/heads/main", "c4", ""))
	mototest.Image(t, c, p+"-other-ref", tagged(p, "refs/heads/dev", "c5", "passed"))
	mototest.Image(t, c, p+"-other-pipeline", tagged(p+"-x", "refs/heads/main", "c6", "passed"))
	mototest.Image(t, moto.EC2("us-west-2"), p+"-other-region", tagged(p, "refs/heads/main", "c7", "passed"))

	got, err := Find(context.Background(), c, Query{Pipeline: p, Ref: "main", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want {
		t.Fatalf("got %s, want the newest passed %s (older passed: %s)", got.ID, want, older)
	}
	if got.Commit != "c2" || got.Ref != "refs/heads/main" || got.Pipeline != p ||
		got.Run != p+"/refs/heads/main/c2" || got.Region != "us-east-1" || got.CreationDate == "" {
		t.Errorf("outputs: %+v", got)
	}
	if got.Tags[TagTest] != "passed" || got.Tags[TagCommit] != "c2" {
		t.Errorf("tags: %v", got.Tags)
	}
}

func TestKilnAMICommit(t *testing.T) {
	p := pipeline(t)
	c := moto.EC2("us-east-1")
	want := mototest.Image(t, c, p+"-1", tagged(p, "refs/heads/main", "c1", "passed"))
	nextSecond()
	mototest.Image(t, c, p+"-2", tagged(p, "refs/heads/main", "c2", "passed"))
	mototest.Image(t, c, p+"-1-failed", tagged(p, "refs/heads/main", "c1", "failed"))

	got, err := Find(context.Background(), c, Query{Pipeline: p, Ref: "main", Region: "us-east-1", Commit: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want || got.Commit != "c1" {
		t.Fatalf("got %s at %s, want %s at c1", got.ID, got.Commit, want)
	}
}

func TestKilnAMIRefForms(t *testing.T) {
	p := pipeline(t)
	c := moto.EC2("us-east-1")
	full := mototest.Image(t, c, p+"-full", tagged(p, "refs/heads/main", "c1", "passed"))
	tag := mototest.Image(t, c, p+"-tag", tagged(p, "refs/tags/v1.2.0", "c2", "passed"))
	for _, tc := range []struct{ ref, want string }{
		{"main", full},
		{"refs/heads/main", full},
		{"refs/tags/v1.2.0", tag},
	} {
		got, err := Find(context.Background(), c, Query{Pipeline: p, Ref: tc.ref, Region: "us-east-1"})
		if err != nil {
			t.Errorf("ref %q: %v", tc.ref, err)
			continue
		}
		if got.ID != tc.want {
			t.Errorf("ref %q: got %s, want %s", tc.ref, got.ID, tc.want)
		}
	}
}

func TestKilnAMINotFound(t *testing.T) {
	p := pipeline(t)
	c := moto.EC2("us-east-1")
	failed := mototest.Image(t, c, p+"-failed", tagged(p, "refs/heads/main", "c1", "failed"))
	mototest.Image(t, moto.EC2("us-west-2"), p+"-west", tagged(p, "refs/heads/main", "c1", "passed"))

	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"none at all", Query{Pipeline: p, Ref: "dev", Region: "us-east-1"},
			[]string{`kiln-ami: no AMI of pipeline "` + p + `" at ref "dev" in us-east-1 has passed kiln's test (kiln:test=passed)`}},
		{"only failed", Query{Pipeline: p, Ref: "main", Region: "us-east-1"},
			[]string{`no AMI of pipeline "` + p + `" at ref "main" in us-east-1 has passed kiln's test (kiln:test=passed)`,
				"1 untested or failed AMI(s) match, the newest " + failed + " (kiln:test=failed)"}},
		{"commit", Query{Pipeline: p, Ref: "main", Region: "us-east-1", Commit: "c9"},
			[]string{`no AMI of pipeline "` + p + `" at ref "main" and commit "c9" in us-east-1 has passed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(context.Background(), c, tc.q)
			if err == nil {
				t.Fatalf("found %s, want an error", got.ID)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestKilnAMIRefValues(t *testing.T) {
	for ref, want := range map[string]string{
		"main":             "main refs/heads/main",
		"refs/heads/main":  "refs/heads/main main",
		"refs/tags/v1":     "refs/tags/v1",
		"refs/pull/7/head": "refs/pull/7/head",
		"feature/x":        "feature/x refs/heads/feature/x",
	} {
		if got := strings.Join(RefValues(ref), " "); got != want {
			t.Errorf("RefValues(%q) = %q, want %q", ref, got, want)
		}
	}
}

// A copy kiln's distribution made next to its source is newer but is not a
// newer bake: the source wins. A copy alone, as in a shared-to account, is
// found.
func TestKilnAMICopies(t *testing.T) {
	p := pipeline(t)
	c := moto.EC2("us-east-1")
	source := mototest.Image(t, c, p+"-bake", tagged(p, "refs/heads/main", "c1", "passed"))
	nextSecond()
	copyTags := tagged(p, "refs/heads/main", "c1", "passed")
	copyTags[TagSource] = source
	mototest.Image(t, c, p+"-copy", copyTags)
	got, err := Find(context.Background(), c, Query{Pipeline: p, Ref: "main", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != source {
		t.Errorf("got %s, want the bake %s over its copy", got.ID, source)
	}

	west := moto.EC2("us-west-2")
	copyTags[TagSource] = "ami-elsewhere"
	alone := mototest.Image(t, west, p+"-copy", copyTags)
	got, err = Find(context.Background(), west, Query{Pipeline: p, Ref: "main", Region: "us-west-2"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != alone {
		t.Errorf("got %s, want the copy %s", got.ID, alone)
	}
}
