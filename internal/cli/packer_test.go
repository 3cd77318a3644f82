package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPackerPluginsInstallsKilnsPlugin: a packer-plugin-kiln on PATH is
// linked into a directory of its own under the data dir, which comes first
// in the PACKER_PLUGIN_PATH bakes get; the worker user's plugins stay last.
// Without the plugin, bakes keep Packer's default.
func TestPackerPluginsInstallsKilnsPlugin(t *testing.T) {
	bin, data, home := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PATH", bin)
	assert.Empty(t, packerPlugins(data, zerolog.Nop()), "no plugin, no path")

	plugin := filepath.Join(bin, pluginName)
	require.NoError(t, os.WriteFile(plugin, []byte("#!/bin/sh\n"), 0o755))
	path := packerPlugins(data, zerolog.Nop())
	dir := filepath.Join(data, "packer-plugins")
	assert.Equal(t, dir+":"+filepath.Join(home, ".config", "packer", "plugins"), path)
	target, err := os.Readlink(filepath.Join(dir, pluginName))
	require.NoError(t, err)
	assert.Equal(t, plugin, target)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the directory holds kiln's plugin alone")

	// A second start replaces the link, as after an upgrade.
	assert.Equal(t, path, packerPlugins(data, zerolog.Nop()))
}
