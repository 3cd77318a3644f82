package ami_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/ami"
)

// TestPluginTagsMatch: packer-plugin-kiln, a module of its own, copies the
// tags it looks AMIs up by; they must stay kiln's.
func TestPluginTagsMatch(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../packer-plugin-kiln/datasource/ami/lookup.go", nil, 0)
	require.NoError(t, err)
	plugin := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok && len(v.Values) == 1 {
			if lit, ok := v.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				plugin[v.Names[0].Name], _ = strconv.Unquote(lit.Value)
			}
		}
		return true
	})
	for name, want := range map[string]string{
		"TagPipeline": ami.TagPipeline, "TagCommit": ami.TagCommit, "TagRef": ami.TagRef, "TagRun": ami.TagRun,
		"TagTest": ami.TagTest, "TagSource": ami.TagSource, "TestPassed": ami.TestPassed,
	} {
		assert.Equal(t, want, plugin[name], "packer-plugin-kiln's %s", name)
	}
}
