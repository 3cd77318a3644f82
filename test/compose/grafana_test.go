package compose

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// grafanaProvisioning is what the grafana service is given: the data
// source's uid, and the directory its dashboards are read from (in the
// repository).
func grafanaProvisioning(t *testing.T) (uid, dashboards string) {
	t.Helper()
	svcs := services(t)
	g, ok := svcs["grafana"]
	require.True(t, ok, "compose has no grafana")
	require.Equal(t, "./deploy/grafana/provisioning", mount(g, "/etc/grafana/provisioning"), "grafana is not provisioned from deploy/grafana/provisioning")

	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")), &ds))
	require.Len(t, ds.Datasources, 1)
	d := ds.Datasources[0]
	assert.Equal(t, "prometheus", d.Type)
	require.NotEmpty(t, d.UID)
	u, err := url.Parse(d.URL)
	require.NoError(t, err)
	prom, ok := svcs[u.Hostname()]
	require.True(t, ok, "the data source's %s is no service of compose", u.Host)
	assert.True(t, strings.HasPrefix(prom.Image, "prom/prometheus:"), "the data source is not the prometheus service: %s", prom.Image)
	assert.Equal(t, "9090", u.Port(), "Prometheus listens on 9090")

	var providers struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, "deploy", "grafana", "provisioning", "dashboards", "kiln.yml")), &providers))
	require.Len(t, providers.Providers, 1)
	p := providers.Providers[0]
	assert.Equal(t, "file", p.Type)
	src := mount(g, p.Options.Path)
	require.True(t, strings.HasPrefix(src, "./"), "grafana mounts nothing at its dashboards' path %s: %v", p.Options.Path, g.Volumes)
	return d.UID, root(t, strings.TrimPrefix(src, "./"))
}

// dashboard is what the test reads of Grafana's dashboard JSON.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Query      any        `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// TestGrafanaDashboard: Grafana gets the Prometheus data source and kiln's
// dashboard; every panel queries through that data source, and only series
// that kiln (read from its source) or the Temporal SDK (from its metric
// names) export; and every kiln_ series has a panel.
func TestGrafanaDashboard(t *testing.T) {
	uid, dir := grafanaProvisioning(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboard in %s", dir)

	kiln := kilnSeries(t)
	sdk := sdkMetrics(t)
	shown := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(b, &d), f)
		assert.NotEmpty(t, d.UID, f)
		assert.NotEmpty(t, d.Title, f)
		assert.Positive(t, d.SchemaVersion, f)
		require.NotEmpty(t, d.Panels, f)

		var exprs []string
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				assert.Equal(t, uid, v.Datasource.UID, "a variable's data source")
				q, _ := json.Marshal(v.Query)
				if m := regexp.MustCompile(`label_values\(([^,)]+)`).FindStringSubmatch(string(q)); m != nil {
					exprs = append(exprs, m[1])
				}
			}
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			assert.Equal(t, uid, p.Datasource.UID, "panel %q's data source", p.Title)
			require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
			for _, tg := range p.Targets {
				if tg.Datasource != nil {
					assert.Equal(t, uid, tg.Datasource.UID, "panel %q's query's data source", p.Title)
				}
				require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
				exprs = append(exprs, tg.Expr)
			}
		}
		for _, e := range exprs {
			series := seriesIn(e)
			assert.NotEmpty(t, series, "%s queries no series", e)
			for _, s := range series {
				switch {
				case kiln[s] != "":
					shown[kiln[s]] = true
				case strings.HasPrefix(s, "kiln_"):
					assert.Fail(t, "kiln exports no "+s, "in %s; kiln's: %v", e, slices.Sorted(maps.Keys(kiln)))
				default:
					assert.True(t, sdkExports(sdk, s), "the Temporal SDK exports no %s (in %s)", s, e)
				}
			}
		}
	}
	for _, family := range kiln {
		assert.True(t, shown[family], "no panel shows %s", family)
	}
}

// kilnSeries maps every Prometheus series kiln's source exports to its
// family: SDK-handler counters gain _total, timers are histograms in
// seconds, and client_golang's names are taken as they are written.
func kilnSeries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	handler := regexp.MustCompile(`\.(Counter|Timer|Gauge)\("(kiln_[a-z0-9_]+)"\)`)
	named := regexp.MustCompile(`Name:\s*"(kiln_[a-z0-9_]+)"`)
	err := filepath.WalkDir(root(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root(t) || path == root(t, "test")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range handler.FindAllStringSubmatch(string(b), -1) {
			switch m[1] {
			case "Counter":
				out[m[2]+"_total"] = m[2] + "_total"
			case "Timer":
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					out[m[2]+"_seconds"+s] = m[2] + "_seconds"
				}
			case "Gauge":
				out[m[2]] = m[2]
			}
		}
		for _, m := range named.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = m[1]
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out["kiln_runs_started_total"], "the source scan found kiln's metrics: %v", out)
	return out
}

// sdkMetrics is the Temporal SDK's metric names (temporal_…), evaluated
// from the constants of the SDK version go.mod requires.
func sdkMetrics(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk")
	cmd.Dir = root(t)
	dir, err := cmd.Output()
	require.NoError(t, err, "go list go.temporal.io/sdk")
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "internal", "common", "metrics", "constants.go"))
	require.NoError(t, err)
	consts := map[string]string{}
	def := regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*([^/\n]+)`)
	for range 3 { // a constant may name one defined below it
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			v, ok := "", true
			for _, part := range strings.Split(m[2], "+") {
				part = strings.TrimSpace(part)
				if s, err := strconv.Unquote(part); err == nil {
					v += s
				} else if c, found := consts[part]; found {
					v += c
				} else {
					ok = false
				}
			}
			if ok {
				consts[m[1]] = v
			}
		}
	}
	out := map[string]bool{}
	for _, v := range consts {
		if strings.HasPrefix(v, "temporal_") {
			out[v] = true
		}
	}
	require.True(t, out["temporal_activity_execution_latency"], "read the SDK's metric names: %v", out)
	return out
}

// sdkExports: the SDK's timers (named …_latency) are histograms in
// seconds, its counters gain _total, its gauges are as named.
func sdkExports(sdk map[string]bool, series string) bool {
	for _, suffix := range []string{"_seconds_bucket", "_seconds_sum", "_seconds_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok {
			return sdk[base] && strings.HasSuffix(base, "_latency")
		}
	}
	if base, ok := strings.CutSuffix(series, "_total"); ok && sdk[base] && !strings.HasSuffix(base, "_latency") {
		return true
	}
	return sdk[series] && !strings.HasSuffix(series, "_latency")
}

// seriesIn is the metric names a PromQL expression selects: what is left
// of its identifiers once strings, label matchers, ranges, grouping
// clauses, variables, functions and keywords are taken out.
func seriesIn(expr string) []string {
	for _, re := range []string{`"(?:[^"\\]|\\.)*"`, `\{[^}]*\}`, `\[[^\]]*\]`,
		`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, `\$\w+`} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	keywords := []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
	var out []string
	for _, m := range regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?`).FindAllStringSubmatch(expr, -1) {
		if m[2] == "" && !slices.Contains(keywords, strings.ToLower(m[1])) {
			out = append(out, m[1])
		}
	}
	return out
}
