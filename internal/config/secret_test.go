package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecretRefResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	t.Setenv("KILN_TEST_SECRET", "  s3cret\n")
	t.Setenv("KILN_TEST_BLANK", " \t")
	tests := []struct {
		name    string
		ref     SecretRef
		want    string
		wantErr string
	}{
		{"env", SecretRef{Env: "KILN_TEST_SECRET"}, "s3cret", ""},
		{"file", SecretRef{File: write("secret", "from-file\n")}, "from-file", ""},
		{"unset env", SecretRef{Env: "KILN_TEST_UNSET"}, "", "KILN_TEST_UNSET is unset or empty"},
		{"blank env", SecretRef{Env: "KILN_TEST_BLANK"}, "", "KILN_TEST_BLANK is unset or empty"},
		{"empty file", SecretRef{File: write("empty", "\n\n")}, "", "is empty"},
		{"missing file", SecretRef{File: filepath.Join(dir, "nope")}, "", "reading secret file"},
		{"no source", SecretRef{}, "", "no env or file given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ref.Resolve()
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestWebhookSecrets(t *testing.T) {
	t.Setenv("KILN_TEST_WIDGET", "w")
	file := filepath.Join(t.TempDir(), "gadget")
	require.NoError(t, os.WriteFile(file, []byte("g\n"), 0o600))
	cfg := &Config{File: "kiln.yaml", Repos: []Repo{
		{Name: "Acme/Widget", WebhookSecret: SecretRef{Env: "KILN_TEST_WIDGET"}},
		{Name: "acme/gadget", WebhookSecret: SecretRef{File: file}},
	}}
	got, err := cfg.WebhookSecrets()
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"acme/widget": []byte("w"), "acme/gadget": []byte("g")}, got)

	cfg.Repos = append(cfg.Repos, Repo{Name: "acme/open"})
	got, err = cfg.WebhookSecrets()
	assert.ErrorContains(t, err, `kiln.yaml: repo "acme/open" has no usable webhook_secret`)
	assert.Nil(t, got)
}

// TestParseDoesNotResolveSecrets guards that a config naming secrets that are
// not there yet still loads: secrets are read at server start only.
func TestParseDoesNotResolveSecrets(t *testing.T) {
	t.Setenv("WIDGET_WEBHOOK_SECRET", "")
	cfg, err := Parse("kiln.yaml", []byte(fullConfig))
	require.NoError(t, err)
	_, err = cfg.WebhookSecrets()
	assert.Error(t, err)
}
