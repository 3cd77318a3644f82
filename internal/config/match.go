package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/kiln-ci/kiln/internal/event"
)

// Repo returns the allowlisted repository with the given full name, or nil.
// GitHub treats owner and name case-insensitively, and so does kiln.
func (c *Config) Repo(name string) *Repo {
	for i := range c.Repos {
		if strings.EqualFold(c.Repos[i].Name, name) {
			return &c.Repos[i]
		}
	}
	return nil
}

// Pipeline returns the pipeline with the given name, or nil.
func (c *Config) Pipeline(name string) *Pipeline {
	for i := range c.Pipelines {
		if c.Pipelines[i].Name == name {
			return &c.Pipelines[i]
		}
	}
	return nil
}

// Match returns the pipelines an event starts, in config order.
func (c *Config) Match(ev event.Event) []*Pipeline {
	var out []*Pipeline
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if strings.EqualFold(p.Repo, ev.Repo) && p.Triggers.fires(ev) {
			out = append(out, p)
		}
	}
	return out
}

func (t Triggers) fires(ev event.Event) bool {
	switch ev.Kind {
	case event.KindBranch:
		return matchAny(t.Branch, ev.Branch)
	case event.KindTag:
		return matchAny(t.Tag, ev.Tag)
	case event.KindReview:
		if t.Review == nil || ev.PullRequest == nil {
			return false
		}
		return len(t.Review.Branches) == 0 || matchAny(t.Review.Branches, ev.PullRequest.TargetBranch)
	case event.KindManual:
		return t.ManualAllowed()
	case event.KindSchedule:
		return len(t.Schedule) > 0
	}
	return false
}

// ManualAllowed reports whether `kiln run` may start the pipeline.
func (t Triggers) ManualAllowed() bool { return t.Manual == nil || *t.Manual }

// matchAny reports whether name matches one of the globs. Globs are
// doublestar's, as GitHub Actions users expect: "release/*" matches
// "release/1.0" but not "release/1.0/hotfix", which "release/**" matches;
// "**" matches every name.
func matchAny(globs []string, name string) bool {
	if name == "" {
		return false
	}
	for _, g := range globs {
		if ok, err := doublestar.Match(g, name); err == nil && ok {
			return true
		}
	}
	return false
}

// CancelsSuperseded reports whether a new run of this pipeline for the same ref
// cancels the older one, for an event of the given kind. (It cannot share the
// name of the CancelSuperseded field it reads.)
func (p *Pipeline) CancelsSuperseded(kind event.Kind) bool {
	if p.CancelSuperseded != nil {
		return *p.CancelSuperseded && (kind == event.KindReview || kind == event.KindBranch)
	}
	return kind == event.KindReview
}

// Resolve reads the secret. It fails if the secret is unset or empty, because an
// empty webhook secret would make signature checks accept anything.
func (s SecretRef) Resolve() ([]byte, error) {
	switch {
	case s.Env != "":
		v := strings.TrimSpace(os.Getenv(s.Env))
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is unset or empty", s.Env)
		}
		return []byte(v), nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return nil, fmt.Errorf("reading secret file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return nil, fmt.Errorf("secret file %s is empty", s.File)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("no env or file given")
}

// WebhookSecrets resolves every repository's webhook secret, keyed by lower-cased
// repository name. It is called once at start-up; kiln refuses to start when any
// secret is missing.
func (c *Config) WebhookSecrets() (map[string][]byte, error) {
	out := make(map[string][]byte, len(c.Repos))
	for _, r := range c.Repos {
		s, err := r.WebhookSecret.Resolve()
		if err != nil {
			return nil, fmt.Errorf("%s: repo %q has no usable webhook_secret: %w", c.File, r.Name, err)
		}
		out[strings.ToLower(r.Name)] = s
	}
	return out, nil
}
