package buildspec

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// cacheKeyIgnored is why CodeBuild's newer cache keys are accepted but not
// acted on: a buildspec written for them still runs, and the log says what
// kiln leaves out.
const cacheKeyIgnored = "kiln does not key its caches"

// cache reads the cache section. key, fallback-keys and action are checked
// for shape, so a typo is still caught, and then recorded in Spec.Ignored.
func (p *parser) cache(key, n *yaml.Node, s *Spec) {
	const f = "cache"
	var sawPaths bool
	ignore := func(name string, check func(v *yaml.Node)) func(k, v *yaml.Node) {
		return func(k, v *yaml.Node) {
			check(v)
			s.Ignored = append(s.Ignored, f+"."+name+": "+cacheKeyIgnored)
		}
	}
	p.mapping(n, f, section{
		order: []string{"paths", "key", "fallback-keys", "action"},
		known: map[string]func(k, v *yaml.Node){
			"paths": func(k, v *yaml.Node) {
				sawPaths = true
				s.Cache.Paths = p.nonEmptyStrings(v, f+".paths")
			},
			"key":           ignore("key", func(v *yaml.Node) { p.scalar(v, f+".key") }),
			"fallback-keys": ignore("fallback-keys", func(v *yaml.Node) { p.stringList(v, f+".fallback-keys", false) }),
			"action":        ignore("action", func(v *yaml.Node) { p.scalar(v, f+".action") }),
		},
	})
	if !sawPaths && !isNull(n) {
		p.errorf(key, f+".paths", "is required when cache is present")
	}
}

// nonEmptyStrings reads a list of strings none of which may be blank. Cache
// paths are kept as written: they may be absolute, unlike artifact globs.
func (p *parser) nonEmptyStrings(n *yaml.Node, field string) []string {
	items, nodes := p.stringList(n, field, false)
	for i, s := range items {
		if strings.TrimSpace(s) == "" {
			p.errorf(nodes[i], field, "must not be empty")
		}
	}
	return items
}

// reports reads the reports section: report groups named by the user, each
// with its files. File order is kept, as for variables.
func (p *parser) reports(n *yaml.Node) []Report {
	var out []Report
	p.mapping(n, "reports", section{each: func(k, v *yaml.Node) {
		if strings.TrimSpace(k.Value) == "" {
			p.errorf(k, "reports", "a report group needs a name or ARN")
			return
		}
		out = append(out, p.report(k, v))
	}})
	return out
}

func (p *parser) report(key, n *yaml.Node) Report {
	f := joinField("reports", key.Value)
	r := Report{Name: key.Value, FileFormat: FormatJUnitXML}
	var sawFiles bool
	p.mapping(n, f, section{
		order: []string{"files", "base-directory", "discard-paths", "file-format"},
		known: map[string]func(k, v *yaml.Node){
			"files": func(k, v *yaml.Node) {
				sawFiles = true
				r.Files = p.globs(v, f+".files", false)
			},
			"base-directory": func(k, v *yaml.Node) { r.BaseDirectory = p.baseDir(v, f+".base-directory") },
			"discard-paths":  func(k, v *yaml.Node) { r.DiscardPaths = p.boolean(v, f+".discard-paths") },
			"file-format":    func(k, v *yaml.Node) { r.FileFormat = p.fileFormat(v, f+".file-format") },
		},
	})
	if !sawFiles {
		p.errorf(key, f+".files", "is required")
	}
	return r
}

// otherReportFormats are the file formats CodeBuild reads and kiln does not
// yet: named apart from typos so the error can say which is which.
var otherReportFormats = map[string]bool{
	"CUCUMBERJSON": true, "TESTNGXML": true, "NUNITXML": true, "NUNIT3XML": true, "VISUALSTUDIOTRX": true,
	"CLOVERXML": true, "COBERTURAXML": true, "JACOCOXML": true, "SIMPLECOV": true,
}

func (p *parser) fileFormat(n *yaml.Node, field string) string {
	v, ok := p.scalar(n, field)
	switch {
	case !ok || v == FormatJUnitXML:
	case otherReportFormats[v]:
		p.errorf(n, field, "%s %s: kiln reads only %s reports", v, notYet, FormatJUnitXML)
	case strings.ToUpper(v) == FormatJUnitXML || otherReportFormats[strings.ToUpper(v)]:
		p.errorf(n, field, "%q must be written in capitals: %s", v, strings.ToUpper(v))
	default:
		known := []string{FormatJUnitXML}
		for f := range otherReportFormats {
			known = append(known, f)
		}
		sort.Strings(known[1:])
		p.errorf(n, field, "%q is not a report format; CodeBuild's are %s", v, strings.Join(known, ", "))
	}
	return FormatJUnitXML
}
