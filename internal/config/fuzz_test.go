package config

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: no kiln.yaml makes Parse panic, and every config it accepts
// marshals to a kiln.yaml it accepts again. Seeds are the example and the
// test configs.
func FuzzParse(f *testing.F) {
	for _, doc := range []string{fullConfig, matchConfig} {
		f.Add([]byte(doc))
	}
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "kiln.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := Parse("kiln.yaml", doc)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("a config Parse accepted does not marshal: %v", err)
		}
		if _, err := Parse("kiln.yaml", out); err != nil {
			t.Fatalf("a config Parse accepted marshals to one it refuses: %v\n%s", err, out)
		}
	})
}
