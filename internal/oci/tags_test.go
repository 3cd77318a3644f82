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
			assert.Equal(t, c.want, got)
			again, _ := oci.Tags(c.rules, c.in)
			assert.Equal(t, got, again, "deterministic")
		})
	}
}

func TestTagsLongBranchCut(t *testing.T) {
	got, err := oci.Tags(oci.TagRules{}, oci.TagInput{Kind: "branch", Branch: "x/" + strings.Repeat("a", 200), Commit: commit})
	require.NoError(t, err)
	assert.Len(t, got[0], 128)
	assert.True(t, strings.HasPrefix(got[0], "x-aaa"))
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
