package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Load reads and validates the kiln.yaml at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a kiln.yaml held in memory and returns it with defaults
// filled in. file names the config in errors and becomes Config.File.
//
// Problems are returned as ValidationErrors, all at once and sorted by line, in
// up to three rounds, each run only if the one before found nothing: YAML
// syntax and duplicate keys; the shape, against schemas/kiln.schema.json; and
// what a schema cannot say (cross references, globs, cron, time zones,
// durations). Secrets are not read here: see WebhookSecrets.
func Parse(file string, data []byte) (*Config, error) {
	p := &problems{file: file}
	doc := parseYAML(data, p)
	if p.any() {
		return nil, p.err()
	}
	t := newTree(doc, p)
	if p.any() {
		return nil, p.err()
	}
	if err := validateShape(t, p); err != nil {
		return nil, err
	}
	if p.any() {
		return nil, p.err()
	}
	checkTimeouts(t, p)
	cfg := &Config{File: file}
	if err := doc.Decode(cfg); err != nil {
		if !p.any() { // checkTimeouts reports what the schema lets through
			p.add(place{}, "%v", err)
		}
		return nil, p.err()
	}
	cfg.Defaults()
	checkConfig(cfg, t, p)
	if p.any() {
		return nil, p.err()
	}
	cfg.expandApproverGroups()
	return cfg, nil
}

// Defaults fills in what kiln.yaml may leave out: a build's timeout
// (DefaultBuildTimeout) and a schedule's name (its ref). Parse calls it; code
// that builds a Config by hand should too.
func (c *Config) Defaults() {
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if b := p.Stages.Build; b != nil && b.Timeout == 0 {
			b.Timeout = Duration(DefaultBuildTimeout)
		}
		for j := range p.Triggers.Schedule {
			if s := &p.Triggers.Schedule[j]; s.Name == "" {
				s.Name = s.Ref
			}
		}
	}
}

// checkTimeouts checks every stage's timeout before decoding. It works on the
// tree, not the Config, because a Config cannot tell "0s" from no timeout, and
// because decoding stops at a duration time.ParseDuration refuses.
func checkTimeouts(t *tree, p *problems) {
	pipelines, _ := lookup(t.value, "pipelines").([]any)
	for i := range pipelines {
		stages, _ := lookup(pipelines[i], "stages").(map[string]any)
		for name, stage := range stages {
			s, ok := lookup(stage, "timeout").(string)
			if !ok {
				continue
			}
			at := t.at("pipelines", i, "stages", name, "timeout")
			switch d, err := time.ParseDuration(s); {
			case err != nil:
				p.add(at, "%q is not a valid duration: %v", s, err)
			case d <= 0:
				p.add(at, "must be longer than zero")
			}
		}
	}
}

// expandApproverGroups replaces each "@group" among a gate's approvers by
// the group's logins, once each, so runs snapshot the people who may
// approve. checkConfig has made sure every group exists.
func (c *Config) expandApproverGroups() {
	for i := range c.Pipelines {
		s := &c.Pipelines[i].Stages
		for _, a := range []*Approval{s.Distribute.gate(), s.Publish.gate()} {
			if a == nil {
				continue
			}
			var out []string
			for _, name := range a.Approvers {
				names := []string{name}
				if group, ok := strings.CutPrefix(name, "@"); ok {
					names = c.ApproverGroups[group]
				}
				for _, n := range names {
					if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
						out = append(out, n)
					}
				}
			}
			a.Approvers = out
		}
	}
}
