// Package schemas holds the JSON Schemas of kiln's user-facing files. They are
// the reference for those files' shape: kiln validates against them, and
// editors can use them for completion and inline checks.
package schemas

import _ "embed"

// KilnSchema is kiln.schema.json, the JSON Schema (draft 2020-12) of kiln.yaml.
// internal/config validates every kiln.yaml against it before its own checks.
//
//go:embed kiln.schema.json
var KilnSchema []byte
