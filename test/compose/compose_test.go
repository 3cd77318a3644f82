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
)

type service struct {
	Image       string      `yaml:"image"`
	Build       any         `yaml:"build"`
	Command     []string    `yaml:"command"`
	Environment environment `yaml:"environment"`
	Volumes     []string    `yaml:"volumes"`
	User        string      `yaml:"user"`
	Privileged  bool        `yaml:"privileged"`
	Hostname    string      `yaml:"hostname"`
	DependsOn   dependsOn   `yaml:"depends_on"`
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

// dependsOn maps a service to the condition another waits for, written as
// a list (service_started) or as a map.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
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

func compose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "docker-compose.yml")), &c))
	return c
}

func services(t *testing.T) map[string]service {
	t.Helper()
	return compose(t).Services
}

// workers are the services that run `kiln worker`, by name.
func workers(t *testing.T, svcs map[string]service) []string {
	t.Helper()
	var out []string
	for name, s := range svcs {
		if len(s.Command) > 0 && s.Command[0] == "worker" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	require.NotEmpty(t, out, "compose runs no kiln worker")
	return out
}

// imageEnv is the Dockerfile's ENV, which kiln's services start with.
func imageEnv(t *testing.T) map[string]string {
	image := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.+)$`).FindAllStringSubmatch(readFile(t, "Dockerfile"), -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			image[k] = v
		}
	}
	return image
}

// env is a service's environment, with the image's under it for kiln's
// services.
func env(t *testing.T, s service, image map[string]string) map[string]string {
	out := maps.Clone(image)
	for _, kv := range s.Environment {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// mount finds the volume a service mounts at target: its source, or "".
func mount(s service, target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0]
		}
	}
	return ""
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

// TestComposeRunsKiln: every worker and the starter get every setting kiln
// needs, and nothing it does not read (a misspelt variable is silently
// ignored by kiln, so it is caught here), and the config they mount is the
// one KILN_CONFIG names.
func TestComposeRunsKiln(t *testing.T) {
	svcs := services(t)
	image := imageEnv(t)
	reads := kilnReads(t)
	for _, name := range append(workers(t, svcs), "kiln-starter") {
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
		assert.Equal(t, "./kiln.yaml", mount(s, e["KILN_CONFIG"]), "%s mounts no config at KILN_CONFIG (%s): %v", name, e["KILN_CONFIG"], s.Volumes)
		assert.Contains(t, s.DependsOn, "temporal-namespace", "%s starts before its namespace and search attributes exist", name)
	}
}

// TestComposePrometheus: Prometheus scrapes each worker's --metrics-listen
// port and the starter's listener, and nothing else.
func TestComposePrometheus(t *testing.T) {
	svcs := services(t)
	image := imageEnv(t)
	want := []string{}
	for _, name := range workers(t, svcs) {
		addr := env(t, svcs[name], image)["KILN_METRICS_LISTEN"]
		require.NotEmpty(t, addr, "%s serves no /metrics", name)
		_, port, _ := strings.Cut(addr, ":")
		want = append(want, name+":"+port)
	}
	starter := svcs["kiln-starter"].Command
	i := slices.Index(starter, "--listen")
	require.True(t, i >= 0 && i+1 < len(starter), "the starter names no --listen: %v", starter)
	_, port, _ := strings.Cut(starter[i+1], ":")
	want = append(want, "kiln-starter:"+port)

	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "deploy", "prometheus", "prometheus.yml")), &prom))
	var got []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
	}
	assert.ElementsMatch(t, want, got, "Prometheus's targets are not kiln's metrics endpoints")
	assert.Equal(t, "./deploy/prometheus/prometheus.yml", mount(svcs["prometheus"], "/etc/prometheus/prometheus.yml"),
		"the prometheus service mounts deploy/prometheus/prometheus.yml")
}
