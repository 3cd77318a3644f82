package compose

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/workflows"
)

// required is the version go.mod requires of a module.
func required(t *testing.T, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(readFile(t, "go.mod"))
	require.NotNil(t, m, "go.mod requires no %s", module)
	return m[1]
}

// minor is "1.32" of "v1.32.1" or "1.32.1".
func minor(t *testing.T, version string) string {
	t.Helper()
	m := regexp.MustCompile(`^v?(\d+\.\d+)\.\d+`).FindStringSubmatch(version)
	require.NotNil(t, m, "%q is no version", version)
	return m[1]
}

// script is a one-shot's shell script: its command, under sh -c, with $$
// turned into $ as compose does.
func script(s service) string { return strings.ReplaceAll(strings.Join(s.Command, "\n"), "$$", "$") }

// TestComposeTemporal: Temporal's server and admin-tools images are of the
// minor version kiln embeds and tests against (go.mod's
// go.temporal.io/server); a one-shot sets up both databases' schemas before
// the server starts, with the server's database names; another creates the
// workers' namespace and registers exactly kiln's search attributes, as
// Keyword, before any kiln starts.
func TestComposeTemporal(t *testing.T) {
	svcs := services(t)
	want := minor(t, required(t, "go.temporal.io/server"))

	server := svcs["temporal"]
	repo, tag, _ := strings.Cut(server.Image, ":")
	assert.Equal(t, "temporalio/server", repo, "the server image (auto-setup was discontinued)")
	assert.Equal(t, want, minor(t, tag), "the server image against go.mod's go.temporal.io/server")

	var tools []string
	for name, s := range svcs {
		if repo, tag, _ := strings.Cut(s.Image, ":"); repo == "temporalio/admin-tools" {
			tools = append(tools, name)
			assert.Equal(t, want, minor(t, tag), "%s's admin-tools image against go.mod's go.temporal.io/server", name)
		}
	}
	require.NotEmpty(t, tools, "no service runs temporalio/admin-tools")

	// The schema, for the databases the server reads.
	schema, ok := svcs["temporal-schema"]
	require.True(t, ok, "compose has no temporal-schema one-shot")
	assert.Equal(t, "service_completed_successfully", server.DependsOn["temporal-schema"], "the server starts before its schema is set up")
	serverEnv := env(t, server, map[string]string{"DBNAME": "temporal", "VISIBILITY_DBNAME": "temporal_visibility"})
	assert.Equal(t, "postgres12", serverEnv["DB"])
	sh := script(schema)
	assert.Contains(t, sh, "--plugin postgres12")
	for db, dir := range map[string]string{serverEnv["DBNAME"]: "temporal", serverEnv["VISIBILITY_DBNAME"]: "visibility"} {
		for _, step := range []string{"create-database", "setup-schema -v 0.0",
			"update-schema -d /etc/temporal/schema/postgresql/v12/" + dir + "/versioned"} {
			assert.Regexp(t, `--db `+regexp.QuoteMeta(db)+` `+regexp.QuoteMeta(step)+`(\s|$)`, sh, "%s: no %s", db, step)
		}
	}

	// The namespace the workers use, with kiln's search attributes.
	ns, ok := svcs["temporal-namespace"]
	require.True(t, ok, "compose has no temporal-namespace one-shot")
	assert.Equal(t, "service_healthy", ns.DependsOn["temporal"])
	sh = script(ns)
	namespace := env(t, svcs[workers(t, svcs)[0]], imageEnv(t))["TEMPORAL_NAMESPACE"]
	assert.Contains(t, sh, "namespace create --namespace "+namespace)
	m := regexp.MustCompile(`for name in ([A-Za-z ]+); do`).FindAllStringSubmatch(sh, -1)
	require.NotEmpty(t, m, sh)
	for _, loop := range m {
		assert.ElementsMatch(t, slices.Collect(maps.Keys(workflows.SearchAttributes())), strings.Fields(loop[1]))
	}
	assert.Contains(t, sh, `search-attribute create --namespace `+namespace+` --name "$name" --type Keyword`)
	for _, name := range append(workers(t, svcs), "kiln-starter") {
		assert.Equal(t, "service_completed_successfully", svcs[name].DependsOn["temporal-namespace"], name)
	}
}
