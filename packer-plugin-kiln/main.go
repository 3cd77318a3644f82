// Command packer-plugin-kiln is a Packer plugin that lets a template build on
// an AMI kiln baked and tested: data "kiln-ami" finds the newest one that
// passed kiln's test for a pipeline and ref.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/datasource/ami"
)

// Version is the plugin's version; Packer shows it and `packer init` would
// compare it against a required_plugins constraint.
var Version = version.NewPluginVersion("0.1.0", "", "")

func main() {
	set := plugin.NewSet()
	// Packer names a plugin's components <plugin>-<name>, the plugin name
	// coming from the binary's: packer-plugin-kiln's "ami" is kiln-ami.
	set.RegisterDatasource("ami", new(ami.Datasource))
	set.SetVersion(Version)
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
