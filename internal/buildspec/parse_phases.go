package buildspec

import (
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"gopkg.in/yaml.v3"
)

func (p *parser) phases(n *yaml.Node, ph *Phases) {
	before := len(p.errs)
	read := func(dst **Phase) func(k, v *yaml.Node) {
		return func(k, v *yaml.Node) { *dst = p.phase(v, joinField("phases", k.Value), k) }
	}
	p.mapping(n, "phases", section{
		order: []string{PhaseInstall, PhasePreBuild, PhaseBuild, PhasePostBuild},
		known: map[string]func(k, v *yaml.Node){
			PhaseInstall:   read(&ph.Install),
			PhasePreBuild:  read(&ph.PreBuild),
			PhaseBuild:     read(&ph.Build),
			PhasePostBuild: read(&ph.PostBuild),
		},
	})
	if len(ph.ordered()) == 0 && len(p.errs) == before {
		p.errorf(n, "phases", "must contain at least one phase (install, pre_build, build, post_build)")
	}
}

func (p *parser) phase(n *yaml.Node, field string, key *yaml.Node) *Phase {
	ph := &Phase{OnFailure: OnFailureAbort}
	var sawCommands bool
	p.mapping(n, field, section{
		order: []string{"on-failure", "commands", "finally"},
		known: map[string]func(k, v *yaml.Node){
			"on-failure": func(k, v *yaml.Node) { ph.OnFailure = p.onFailure(v, joinField(field, "on-failure")) },
			"commands": func(k, v *yaml.Node) {
				sawCommands = true
				ph.Commands, _ = p.stringList(v, joinField(field, "commands"), false)
			},
			"finally": func(k, v *yaml.Node) { ph.Finally, _ = p.stringList(v, joinField(field, "finally"), false) },
		},
		unsupported: map[string]string{
			"run-as":           notYet + ": builds run as kiln's worker user",
			"runtime-versions": notYet + ": install runtimes in the build image or with commands",
		},
	})
	if !sawCommands {
		p.errorf(key, joinField(field, "commands"), "is required")
	}
	return ph
}

// onFailure accepts ABORT and CONTINUE; CodeBuild's RETRY forms are rejected
// rather than silently treated as ABORT.
func (p *parser) onFailure(n *yaml.Node, field string) string {
	v, ok := p.scalar(n, field)
	if !ok {
		return OnFailureAbort
	}
	switch {
	case v == OnFailureAbort || v == OnFailureContinue:
		return v
	case strings.HasPrefix(v, "RETRY"):
		p.errorf(n, field, "%s %s", v, notYet+"; use ABORT or CONTINUE")
	default:
		p.errorf(n, field, "%q is not valid; use ABORT or CONTINUE", v)
	}
	return OnFailureAbort
}

func (p *parser) artifacts(key, n *yaml.Node, a *Artifacts) {
	const f = "artifacts"
	var sawFiles bool
	p.mapping(n, f, section{
		order: []string{"files", "name", "base-directory", "discard-paths", "exclude-paths"},
		known: map[string]func(k, v *yaml.Node){
			"files": func(k, v *yaml.Node) {
				sawFiles = true
				a.Files = p.globs(v, f+".files", false)
			},
			"name":           func(k, v *yaml.Node) { a.Name, _ = p.scalar(v, f+".name") },
			"base-directory": func(k, v *yaml.Node) { a.BaseDirectory = p.baseDir(v, f+".base-directory") },
			"discard-paths":  func(k, v *yaml.Node) { a.DiscardPaths = p.boolean(v, f+".discard-paths") },
			"exclude-paths":  func(k, v *yaml.Node) { a.ExcludePaths = p.globs(v, f+".exclude-paths", true) },
		},
		unsupported: map[string]string{
			"enable-symlinks":     notYet,
			"s3-prefix":           notYet + ": kiln decides where artifacts are stored",
			"secondary-artifacts": notYet,
		},
	})
	if !sawFiles && !isNull(n) {
		p.errorf(key, f+".files", "is required when artifacts is present")
	}
}

// globs reads glob patterns and checks each can match inside the base directory.
func (p *parser) globs(n *yaml.Node, field string, scalarOK bool) []string {
	pats, nodes := p.stringList(n, field, scalarOK)
	for i, pat := range pats {
		clean := cleanPattern(pat)
		switch {
		case !doublestar.ValidatePattern(clean):
			p.errorf(nodes[i], field, "%q is not a valid glob pattern", pat)
		case path.IsAbs(pat) || clean == ".." || strings.HasPrefix(clean, "../"):
			p.errorf(nodes[i], field, "%q must be relative and stay inside the base directory", pat)
		}
	}
	return pats
}

// cleanPattern drops leading "./", which CodeBuild allows but io/fs paths do not.
func cleanPattern(pat string) string {
	for strings.HasPrefix(pat, "./") {
		pat = strings.TrimLeft(pat[2:], "/")
	}
	return pat
}

// baseDir must name a directory inside the source tree: artifacts are the
// build's own output, never files from elsewhere on the worker.
func (p *parser) baseDir(n *yaml.Node, field string) string {
	v, ok := p.scalar(n, field)
	if ok && !filepath.IsLocal(filepath.FromSlash(v)) {
		p.errorf(n, field, "%q must be a relative path inside the source directory", v)
	}
	return v
}
