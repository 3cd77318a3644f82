// Package examples bundles the example pipeline `kiln dev` runs out of the box:
// kiln.yaml, and the files of the repository it builds.
package examples

import "embed"

// Files holds kiln.yaml (a text/template, see Params) and repo/, the example
// repository's files.
//
//go:embed kiln.yaml all:repo
var Files embed.FS

// The example pipelines: hello builds on the worker; ami runs all five
// stages, and is in the rendered config only when a local AWS is at hand;
// container builds in an image and publishes a Dockerfile image, and is in
// it only when the worker has a container runtime.
const (
	Pipeline          = "hello"
	AMIPipeline       = "ami"
	ContainerPipeline = "container"
)

// Params fill kiln.yaml's template. Repo and Secret are YAML-quoted paths;
// AWS (a YAML-quoted EC2 endpoint) and Registry (host:port) are empty
// without a local AWS and registry; BuildImage (a busybox image in the
// registry) is empty without a container runtime.
type Params struct {
	Repo, Secret  string
	AWS, Registry string
	BuildImage    string
}
