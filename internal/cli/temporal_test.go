package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTemporalCloudAPIKey: an API key, from a file or TEMPORAL_API_KEY,
// becomes the client's credentials and turns TLS on; without one, a local
// server is dialled in plain gRPC.
func TestTemporalCloudAPIKey(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "")
	plain := temporalFlags{address: "127.0.0.1:7233", namespace: "default"}
	opts, err := plain.options(zerolog.Nop())
	require.NoError(t, err)
	assert.Nil(t, opts.Credentials)
	assert.Nil(t, opts.ConnectionOptions.TLS)

	file := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(file, []byte("key-from-file\n"), 0o600))
	cloud := temporalFlags{address: "ns.acct.tmprl.cloud:7233", namespace: "ns.acct", apiKeyFile: file}
	opts, err = cloud.options(zerolog.Nop())
	require.NoError(t, err)
	assert.NotNil(t, opts.Credentials)
	assert.NotNil(t, opts.ConnectionOptions.TLS, "Temporal Cloud's API keys go over TLS")

	t.Setenv("TEMPORAL_API_KEY", "key-from-env")
	opts, err = (&temporalFlags{address: "x:7233", namespace: "ns"}).options(zerolog.Nop())
	require.NoError(t, err)
	assert.NotNil(t, opts.Credentials)

	require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600))
	_, err = cloud.options(zerolog.Nop())
	assert.EqualError(t, err, "API key file "+file+" is empty")
}
