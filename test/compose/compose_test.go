// Package compose checks docker-compose.yml against what kiln needs. There
// is no Docker engine here to run it, so the test reads it as kiln would
// be run by it.
package compose

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ci/kiln/workflows"
)

type service struct {
	Image       string      `yaml:"image"`
	Command     []string    `yaml:"command"`
	Environment environment `yaml:"environment"`
	Volumes     []string    `yaml:"volumes"`
}

// environment is a service's, written as a list of K=V or as a map.
type environment []string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var m map[string]string
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			*e = append(*e, k+"="+v)
		}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*e = list
	return nil
}

func root(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func readFile(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(root(t, parts...))
	require.NoError(t, err)
	return string(b)
}

func services(t *testing.T) map[string]service {
	t.Helper()
	var compose struct {
		Services map[string]service `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "docker-compose.yml")), &compose))
	return compose.Services
}

// env is a service's environment, with the image's (the Dockerfile's ENV)
// under it for kiln's services.
func env(t *testing.T, s service, image map[string]string) map[string]string {
	out := maps.Clone(image)
	for _, kv := range s.Environment {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// kilnReads is every environment variable kiln's commands read, found in
// internal/cli's source, and those kiln.yaml names for secrets.
func kilnReads(t *testing.T) map[string]bool {
	out := map[string]bool{}
	files, err := filepath.Glob(root(t, "internal", "cli", "*.go"))
	require.NoError(t, err)
	reads := regexp.MustCompile(`(?:envOr|Getenv)\("([A-Z0-9_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range reads.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
	}
	for _, m := range regexp.MustCompile(`env: *([A-Z0-9_]+)`).FindAllStringSubmatch(readFile(t, "deploy", "compose", "kiln.yaml"), -1) {
		out[m[1]] = true
	}
	require.True(t, out["KILN_CONFIG"] && out["TEMPORAL_ADDRESS"], "the source scan found kiln's variables")
	return out
}

// TestComposeRunsKiln: the worker and the starter get every setting kiln
// needs, and nothing it does not read (a misspelt variable is silently
// ignored by kiln, so it is caught here); the config they mount is the one
// KILN_CONFIG names; Temporal's images are of one version; the search
// attributes registered are kiln's; Prometheus scrapes both.
func TestComposeRunsKiln(t *testing.T) {
	svcs := services(t)
	image := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.+)$`).FindAllStringSubmatch(readFile(t, "Dockerfile"), -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			image[k] = v
		}
	}
	reads := kilnReads(t)
	for _, name := range []string{"kiln-worker", "kiln-starter"} {
		s, ok := svcs[name]
		require.True(t, ok, "compose has no %s", name)
		e := env(t, s, image)
		for k := range e {
			if strings.HasPrefix(k, "KILN_") || strings.HasPrefix(k, "TEMPORAL_") {
				assert.True(t, reads[k], "%s sets %s, which kiln does not read", name, k)
			}
		}
		for _, k := range []string{"KILN_CONFIG", "KILN_DATA_DIR", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
			assert.NotEmpty(t, e[k], "%s has no %s", name, k)
		}
		assert.True(t, slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.Contains(v, ":"+e["KILN_CONFIG"]+":") }),
			"%s mounts no config at KILN_CONFIG (%s): %v", name, e["KILN_CONFIG"], s.Volumes)
	}

	// One Temporal version across its images.
	version := regexp.MustCompile(`:(\d+\.\d+\.\d+)`)
	server := version.FindStringSubmatch(svcs["temporal"].Image)
	tools := version.FindStringSubmatch(svcs["temporal-search-attributes"].Image)
	require.NotNil(t, server)
	require.NotNil(t, tools)
	assert.Equal(t, server[1], tools[1], "temporal and admin-tools images")

	// The one-shot registers exactly kiln's search attributes, as Keyword.
	script := strings.Join(svcs["temporal-search-attributes"].Command, "\n")
	m := regexp.MustCompile(`for name in ([A-Za-z ]+); do`).FindStringSubmatch(script)
	require.NotNil(t, m, script)
	assert.ElementsMatch(t, slices.Collect(maps.Keys(workflows.SearchAttributes())), strings.Fields(m[1]))
	assert.Contains(t, script, "--type Keyword")

	// Prometheus scrapes the worker's metrics port and the starter's listener.
	worker := env(t, svcs["kiln-worker"], image)["KILN_METRICS_LISTEN"]
	require.NotEmpty(t, worker, "the worker serves no /metrics")
	_, workerPort, _ := strings.Cut(worker, ":")
	starter := svcs["kiln-starter"].Command[slices.Index(svcs["kiln-starter"].Command, "--listen")+1]
	_, starterPort, _ := strings.Cut(starter, ":")
	prom := readFile(t, "deploy", "prometheus", "prometheus.yml")
	assert.Contains(t, prom, `"kiln-worker:`+workerPort+`"`)
	assert.Contains(t, prom, `"kiln-starter:`+starterPort+`"`)
	assert.True(t, slices.ContainsFunc(svcs["prometheus"].Volumes, func(v string) bool {
		return strings.HasPrefix(v, "./deploy/prometheus/prometheus.yml:")
	}), "the prometheus service mounts deploy/prometheus/prometheus.yml")
}
