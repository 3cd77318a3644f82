// Command kiln is a durable CI/CD engine for machine images and containers on
// Temporal. See `kiln help`.
package main

import (
	"os"

	"github.com/kiln-ci/kiln/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
