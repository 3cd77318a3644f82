package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/workflows"
)

// TestMarkdownCode: text from a webhook or a build's output becomes one
// inline code span in one table cell, whatever it holds.
func TestMarkdownCode(t *testing.T) {
	assert.Equal(t, "`release/café`", workflows.MarkdownCode("release/café"))
	assert.Equal(t, "`a'b\\|c <img src=x onerror=alert(1)> [x](javascript:y)`",
		workflows.MarkdownCode("a`b|c\n<img src=x onerror=alert(1)> [x](javascript:y)"))
}
