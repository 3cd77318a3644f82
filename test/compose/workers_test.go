package compose

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ci/kiln/internal/config"
)

// stage is one FROM of the Dockerfile: its name and its instructions, each
// on one line (continuations joined).
type stage struct {
	name         string
	instructions []string
}

func dockerfile(t *testing.T) []stage {
	t.Helper()
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(readFile(t, "Dockerfile"), " ")
	var stages []stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); strings.EqualFold(f[0], "FROM") {
			s := stage{}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			continue
		}
		require.NotEmpty(t, stages, "an instruction before FROM: %s", line)
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, line)
	}
	require.NotEmpty(t, stages)
	return stages
}

// TestWorkerImage: the image the workers run has git, packer and runc
// installed (and the CNI plugins and iptables that keep build containers off
// the worker's network), and a buildkitd built from kiln's own go.mod, so
// at the version of the BuildKit client kiln is built with.
func TestWorkerImage(t *testing.T) {
	stages := dockerfile(t)
	final := stages[len(stages)-1]

	var packages []string
	for _, in := range final.instructions {
		if _, after, ok := strings.Cut(in, "apt-get install"); ok {
			packages = append(packages, strings.Fields(strings.Split(after, "&&")[0])...)
		}
	}
	for _, p := range []string{"git", "packer", "runc", "containernetworking-plugins", "iptables"} {
		assert.Contains(t, packages, p, "the image installs no %s", p)
	}

	require.NotEmpty(t, required(t, "github.com/moby/buildkit"))
	from := ""
	for _, s := range stages[:len(stages)-1] {
		hasMod := false
		for _, in := range s.instructions {
			if strings.HasPrefix(in, "COPY ") && strings.Contains(in, "go.mod") {
				hasMod = true
			}
			if strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build") && strings.Contains(in, "github.com/moby/buildkit/cmd/buildkitd") {
				assert.True(t, hasMod, "buildkitd is built before go.mod is copied in, so not at go.mod's version")
				assert.NotContains(t, in, "buildkitd@", "buildkitd is pinned apart from go.mod")
				assert.NotContains(t, in, "-mod=mod", "go build may move go.mod's versions")
				from = s.name
			}
		}
	}
	require.NotEmpty(t, from, "no build stage builds github.com/moby/buildkit/cmd/buildkitd")
	assert.True(t, slices.ContainsFunc(final.instructions, func(in string) bool {
		f := strings.Fields(in)
		return f[0] == "COPY" && slices.Contains(f, "--from="+from) && strings.Contains(in, "buildkitd") &&
			(f[len(f)-1] == "/usr/local/bin/" || f[len(f)-1] == "/usr/local/bin/buildkitd")
	}), "the image does not put stage %s's buildkitd on PATH", from)
}

// TestComposeWorkers: the workers run as root and privileged (kiln starts
// buildkitd only as root, and BuildKit's overlayfs and runc need it), each
// with a hostname and data dir of its own, and all of them mount one named
// volume where kiln.yaml's artifact store is, so that any worker can read
// what another built.
func TestComposeWorkers(t *testing.T) {
	c := compose(t)
	names := workers(t, c.Services)
	require.GreaterOrEqual(t, len(names), 2, "one worker shows nothing of a shared artifact store")

	stages := dockerfile(t)
	user := "root"
	for _, in := range stages[len(stages)-1].instructions {
		if f := strings.Fields(in); f[0] == "USER" {
			user = f[1]
		}
	}

	var cfg struct {
		Artifacts struct {
			Dir string `yaml:"dir"`
		} `yaml:"artifacts"`
	}
	kilnYAML := root(t, "deploy", "compose", "kiln.yaml")
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "deploy", "compose", "kiln.yaml")), &cfg))
	_, err := config.Load(kilnYAML)
	require.NoError(t, err, "deploy/compose/kiln.yaml is not a config kiln loads")
	require.True(t, strings.HasPrefix(cfg.Artifacts.Dir, "/"), "deploy/compose/kiln.yaml names no artifacts.dir: %q", cfg.Artifacts.Dir)

	image := imageEnv(t)
	hostnames, dataVolumes, storeVolumes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, name := range names {
		s := c.Services[name]
		if user != "root" && user != "0" {
			assert.Contains(t, []string{"root", "0", "0:0"}, s.User, "%s runs as the image's user %s: kiln starts no buildkitd", name, user)
		}
		assert.True(t, s.Privileged, "%s is not privileged: BuildKit cannot mount overlayfs or run runc", name)

		assert.NotEmpty(t, s.Hostname, "%s's host task queue would change with each container", name)
		assert.False(t, hostnames[s.Hostname], "%s shares hostname %s", name, s.Hostname)
		hostnames[s.Hostname] = true

		data := mount(s, env(t, s, image)["KILN_DATA_DIR"])
		assert.Contains(t, c.Volumes, data, "%s's data dir is not on a named volume", name)
		assert.False(t, dataVolumes[data], "%s shares data dir volume %s: one worker per data dir", name, data)
		dataVolumes[data] = true

		store := mount(s, cfg.Artifacts.Dir)
		assert.Contains(t, c.Volumes, store, "%s mounts no named volume at artifacts.dir %s: %v", name, cfg.Artifacts.Dir, s.Volumes)
		storeVolumes[store] = true
	}
	assert.Len(t, storeVolumes, 1, "the workers mount different artifact stores")
	for v := range storeVolumes {
		assert.False(t, dataVolumes[v], "the artifact store is a worker's data dir")
	}
}
