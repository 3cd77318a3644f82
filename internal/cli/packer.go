package cli

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rs/zerolog"
)

// pluginName is kiln's own Packer plugin (packer-plugin-kiln), which gives
// templates the data source kiln-ami.
const pluginName = "packer-plugin-kiln"

// packerFlag is the packer bakes run: Debian's 1.6.6 has amazon-ebs built in
// but loads no plugins; 1.7 and later load kiln's.
func packerFlag(fs *flag.FlagSet) *string {
	return fs.String("packer", envOr("KILN_PACKER", ""), "the packer binary bakes run; default: packer from PATH (env KILN_PACKER)")
}

// packerPlugins installs kiln's Packer plugin for bakes: a link to it in
// <data-dir>/packer-plugins, a directory of kiln's alone (Packer loads every
// packer-plugin-* it finds in PACKER_PLUGIN_PATH). The plugin is looked for
// next to the kiln binary, then on PATH. It returns the PACKER_PLUGIN_PATH
// bakes get, which keeps the worker user's own plugins (packer init's) in
// its last entry, the one Packer looks for installed plugins in; "" when
// there is no plugin to install.
func packerPlugins(dataDir string, log zerolog.Logger) string {
	plugin := findPlugin()
	if plugin == "" {
		log.Info().Msg(pluginName + " is not installed: bakes cannot use data \"kiln-ami\" " +
			"(go install ./packer-plugin-kiln, and put it next to kiln or on PATH)")
		return ""
	}
	dir := filepath.Join(dataDir, "packer-plugins")
	link := filepath.Join(dir, pluginName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn().Err(err).Msg("cannot install " + pluginName + " for bakes")
		return ""
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn().Err(err).Msg("cannot install " + pluginName + " for bakes")
		return ""
	}
	if err := os.Symlink(plugin, link); err != nil {
		log.Warn().Err(err).Msg("cannot install " + pluginName + " for bakes")
		return ""
	}
	path := dir
	if home, err := os.UserHomeDir(); err == nil {
		path += string(filepath.ListSeparator) + filepath.Join(home, ".config", "packer", "plugins")
	}
	log.Info().Str("plugin", plugin).Msg("bakes can use data \"kiln-ami\" (with Packer 1.7 or later)")
	return path
}

// findPlugin returns the absolute path of kiln's Packer plugin, or "".
func findPlugin() string {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), pluginName); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(pluginName); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}

func isExecutable(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}
