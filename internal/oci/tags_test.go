package oci_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func TestTagsDefaults(t *testing.T) {
	off := false
	semver := oci.TagRules{SemverMinor: true, SemverMajor: true}
	cases := []struct {
		name  string
		rules oci.TagRules
		in    oci.TagInput
		want  []string
	}{
		{"DefaultBranchPush", oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "main", DefaultBranch: "main", Commit: commit},
			[]string{"main", "latest", "0123456"}},
		{"OtherBranchSanitized", oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "feature/x", DefaultBranch: "main", Commit: commit},
			[]string{"feature-x", "0123456"}},
		{"UnknownDefaultBranchNeverLatest", oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "main", Commit: commit},
			[]string{"main", "0123456"}},
		{"ManualRunOfDefaultBranch", oci.TagRules{}, oci.TagInput{Kind: "manual", Branch: "main", DefaultBranch: "main", Commit: commit},
			[]string{"main", "latest", "0123456"}},
		{"ScheduledRunOfBranch", oci.TagRules{}, oci.TagInput{Kind: "schedule", Branch: "nightly", DefaultBranch: "main", Commit: commit},
			[]string{"nightly", "0123456"}},
		{"TagPlain", oci.TagRules{}, oci.TagInput{Kind: "tag", Tag: "v1.2.3", Commit: commit},
			[]string{"v1.2.3", "0123456"}},
		{"TagSemverMinorMajor", semver, oci.TagInput{Kind: "tag", Tag: "v1.2.3", Commit: commit},
			[]string{"v1.2.3", "1.2", "1", "0123456"}},
		{"TagSemverWithoutV", oci.TagRules{SemverMinor: true}, oci.TagInput{Kind: "tag", Tag: "10.0.7", Commit: commit},
			[]string{"10.0.7", "10.0", "0123456"}},
		{"PreReleaseGetsNoMinorMajor", semver, oci.TagInput{Kind: "tag", Tag: "v1.2.3-rc.1", Commit: commit},
			[]string{"v1.2.3-rc.1", "0123456"}},
		{"BuildMetadataSanitizedNoMinorMajor", semver, oci.TagInput{Kind: "tag", Tag: "v1.2.3+b5", Commit: commit},
			[]string{"v1.2.3-b5", "0123456"}},
		{"NonSemverTag", semver, oci.TagInput{Kind: "tag", Tag: "release-2024", Commit: commit},
			[]string{"release-2024", "0123456"}},
		{"Review", oci.TagRules{}, oci.TagInput{Kind: "review", Branch: "fix/y", PR: 42, Commit: commit},
			[]string{"pr-42", "0123456"}},
		{"NoShortSHA", oci.TagRules{ShortSHA: &off}, oci.TagInput{Kind: "branch", Branch: "main", DefaultBranch: "main", Commit: commit},
			[]string{"main", "latest"}},
		{"CustomTemplatesAndDedupe", oci.TagRules{Branch: []string{"{branch}-{short_sha}", "sha-{sha}", "{short_sha}"}},
			oci.TagInput{Kind: "branch", Branch: "dev", DefaultBranch: "main", Commit: commit},
			[]string{"dev-0123456", "sha-" + commit, "0123456"}},
		{"EmptyListMeansOnlyShortSHA", oci.TagRules{Review: []string{}}, oci.TagInput{Kind: "review", PR: 7, Commit: commit},
			[]string{"0123456"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := oci.Tags(c.rules, c.in)
			require.NoError(t, err)
			assert.Equal(t, c.want, oci.TagNames(got))
			again, _ := oci.Tags(c.rules, c.in)
			assert.Equal(t, got, again, "deterministic")
		})
	}
}

func TestTagsLongBranchCut(t *testing.T) {
	got, err := oci.Tags(oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "x/" + strings.Repeat("a", 200), Commit: commit})
	require.NoError(t, err)
	assert.Len(t, got[0].Name, 128)
	assert.True(t, strings.HasPrefix(got[0].Name, "x-aaa"))
}

func TestTagsErrors(t *testing.T) {
	off := false
	cases := []struct {
		name    string
		rules   oci.TagRules
		in      oci.TagInput
		wantErr string
	}{
		{"UnknownKind", oci.TagRules{}, oci.TagInput{Kind: "push", Commit: commit}, `unknown run kind "push"`},
		{"UnknownPlaceholder", oci.TagRules{Branch: []string{"{brnach}"}}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit}, "unknown placeholder {brnach}"},
		{"PlaceholderWithoutValue", oci.TagRules{Branch: []string{"{tag}"}}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit}, "has no tag"},
		{"ReviewWithoutPR", oci.TagRules{}, oci.TagInput{Kind: "review", Commit: commit}, "has no pull request"},
		{"InvalidLiteral", oci.TagRules{Branch: []string{"{branch}:x"}}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit}, "not a valid tag"},
		{"LeadingDot", oci.TagRules{Branch: []string{".{branch}"}}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit}, "not a valid tag"},
		{"ShortCommit", oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: "abc"}, "not a hex SHA"},
		{"NoTagsAtAll", oci.TagRules{Review: []string{}, ShortSHA: &off}, oci.TagInput{Kind: "review", PR: 1, Commit: commit}, "no tags"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := oci.Tags(c.rules, c.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

// TestTagPolicies: tags that name a commit or an exact release are
// write-once (if-absent for reviews, whose commits anyone can push), X.Y
// and X only move forward, and the rest move with the ref.
func TestTagPolicies(t *testing.T) {
	semver := oci.TagRules{SemverMinor: true, SemverMajor: true}
	cases := []struct {
		name  string
		rules oci.TagRules
		in    oci.TagInput
		want  []oci.Tag
	}{
		{"DefaultBranch", oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "main", DefaultBranch: "main", Commit: commit},
			[]oci.Tag{{Name: "main", Policy: oci.Moving}, {Name: "latest", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"ReviewShortSHAOnlyIfAbsent", oci.TagRules{}, oci.TagInput{Kind: "review", Branch: "fix", PR: 9, Commit: commit},
			[]oci.Tag{{Name: "pr-9", Policy: oci.Moving}, {Name: "0123456", Policy: oci.IfAbsent}}},
		{"ReleaseWriteOnceMinorMajorForward", semver, oci.TagInput{Kind: "tag", Tag: "v1.2.3", Commit: commit},
			[]oci.Tag{{Name: "v1.2.3", Policy: oci.WriteOnce}, {Name: "1.2", Policy: oci.Forward, Release: "1.2.3"},
				{Name: "1", Policy: oci.Forward, Release: "1.2.3"}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"PreReleaseIsAnExactVersion", semver, oci.TagInput{Kind: "tag", Tag: "v2.0.0-rc.1", Commit: commit},
			[]oci.Tag{{Name: "v2.0.0-rc.1", Policy: oci.WriteOnce}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"OtherGitTagMoves", oci.TagRules{}, oci.TagInput{Kind: "tag", Tag: "nightly", Commit: commit},
			[]oci.Tag{{Name: "nightly", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"TemplatesWithTheSHA", oci.TagRules{Branch: []string{"{branch}-{short_sha}", "sha-{sha}", "{branch}"}},
			oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit},
			[]oci.Tag{{Name: "dev-0123456", Policy: oci.WriteOnce}, {Name: "sha-" + commit, Policy: oci.WriteOnce},
				{Name: "dev", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"DuplicateStaysWriteOnce", oci.TagRules{Branch: []string{"0123456"}}, oci.TagInput{Kind: "branch", Branch: "dev", Commit: commit},
			[]oci.Tag{{Name: "0123456", Policy: oci.WriteOnce}}},
		{"DuplicateStaysForward", oci.TagRules{Tag: []string{"{tag}", "1"}, SemverMajor: true, ShortSHA: new(bool)},
			oci.TagInput{Kind: "tag", Tag: "v1.0.1", Commit: commit},
			[]oci.Tag{{Name: "v1.0.1", Policy: oci.WriteOnce}, {Name: "1", Policy: oci.Forward, Release: "1.0.1"}}},
		{"ImageTriggeredTagRunFollowsTagRules", semver, oci.TagInput{Kind: "image", Tag: "v3.1.0", Commit: commit},
			[]oci.Tag{{Name: "v3.1.0", Policy: oci.WriteOnce}, {Name: "3.1", Policy: oci.Forward, Release: "3.1.0"},
				{Name: "3", Policy: oci.Forward, Release: "3.1.0"}, {Name: "0123456", Policy: oci.WriteOnce}}},
		{"ImageTriggeredBranchRun", oci.TagRules{}, oci.TagInput{Kind: "image", Branch: "main", DefaultBranch: "main", Commit: commit},
			[]oci.Tag{{Name: "main", Policy: oci.Moving}, {Name: "latest", Policy: oci.Moving}, {Name: "0123456", Policy: oci.WriteOnce}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := oci.Tags(c.rules, c.in)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

// TestTagsSanitizeBranch: git allows branches a tag may not start with,
// and a long branch is shortened so the rest of the template survives.
func TestTagsSanitizeBranch(t *testing.T) {
	for branch, want := range map[string]string{
		"-wip":        "wip",
		".hidden":     "hidden",
		"/-.x/y":      "x-y",
		"feature/-up": "feature--up",
	} {
		got, err := oci.Tags(oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: branch, Commit: commit})
		require.NoError(t, err, branch)
		assert.Equal(t, want, got[0].Name, branch)
	}

	long := "feature/" + strings.Repeat("b", 300)
	got, err := oci.Tags(oci.TagRules{Branch: []string{"{branch}-{short_sha}", "build-{branch}-{sha}"}},
		oci.TagInput{Kind: "branch", Branch: long, Commit: commit})
	require.NoError(t, err)
	assert.Len(t, got[0].Name, 128)
	assert.True(t, strings.HasSuffix(got[0].Name, "-0123456"), got[0].Name)
	assert.True(t, strings.HasPrefix(got[0].Name, "feature-bbb"), got[0].Name)
	assert.Len(t, got[1].Name, 128)
	assert.True(t, strings.HasSuffix(got[1].Name, "-"+commit), got[1].Name)
	assert.True(t, strings.HasPrefix(got[1].Name, "build-feature-bbb"), got[1].Name)

	_, err = oci.Tags(oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "-.-", Commit: commit})
	assert.ErrorContains(t, err, "not a valid tag", "nothing of the branch is left")
}
