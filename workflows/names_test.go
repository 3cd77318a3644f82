package workflows

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/internal/event"
)

// TestRunIDForEveryRef covers the class of refs git allows that Temporal
// refused in a workflow ID, or that made the ID too long for a file name:
// non-ASCII names and long names. Each ID must be printable ASCII, fit a
// file name with the longest pipeline name and delivery ID, stay readable
// where it can, and differ for different refs.
func TestRunIDForEveryRef(t *testing.T) {
	long := "release/" + strings.Repeat("x", 230)
	cases := []struct {
		ref, want string
	}{
		{"refs/heads/main", "main"},
		{"refs/heads/feature/login-2", "feature/login-2"},
		{"refs/heads/release/café", "release/caf%C3%A9"},
		{"refs/heads/release/功能-🚀", "release/%E5%8A%9F%E8%83%BD-%F0%9F%9A%80"},
		{"refs/heads/100%", "100%25"},
		{"refs/tags/v1.0", "tag-v1.0"},
		{"refs/heads/" + long, ""},
		{"refs/heads/" + long + "y", ""},
		{"refs/heads/" + strings.Repeat("é", 40), ""},
	}
	pipeline := strings.Repeat("p", 63)
	delivery := strings.Repeat("d", 100)
	seen := map[string]string{}
	for _, c := range cases {
		ev := event.Event{}
		ev.FromRef(c.ref)
		id := RunID(pipeline, ev, delivery)
		ref := IDRef(ev.RefLabel())
		if c.want != "" {
			assert.Equal(t, c.want, ref, c.ref)
		}
		for _, r := range id {
			assert.True(t, r < unicode.MaxASCII && unicode.IsPrint(r) && r != ' ', "%q in the ID of %s", r, c.ref)
		}
		assert.LessOrEqual(t, len(filepath.Base(strings.ReplaceAll(id, "/", "_"))), 255, c.ref)
		assert.LessOrEqual(t, len(ref), maxIDRef, c.ref)
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s get the same ID %s", c.ref, other, id)
		}
		seen[id] = c.ref
	}
	// A long ref keeps its start readable.
	ev := event.Event{}
	ev.FromRef("refs/heads/" + long)
	assert.True(t, strings.HasPrefix(IDRef(ev.RefLabel()), "release/xxxx"))
}
