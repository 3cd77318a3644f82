// Package examples bundles the example pipeline `kiln dev` runs out of the box:
// kiln.yaml, and the files of the repository it builds.
package examples

import "embed"

// Files holds kiln.yaml (with {{REPO}} and {{SECRET}} placeholders) and repo/,
// the example repository's files.
//
//go:embed kiln.yaml all:repo
var Files embed.FS

// Pipeline is the example pipeline's name.
const Pipeline = "hello"
