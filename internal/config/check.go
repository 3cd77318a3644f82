package config

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"

	// Schedules name IANA zones; embedding the database makes checking them
	// independent of the host's zoneinfo.
	_ "time/tzdata"
)

// checker does the checks a JSON Schema cannot express. It runs on a Config
// that passed the schema, with defaults filled in, and uses the tree for lines.
type checker struct {
	cfg  *Config
	tree *tree
	p    *problems
}

func checkConfig(cfg *Config, t *tree, p *problems) {
	c := &checker{cfg: cfg, tree: t, p: p}
	c.repos()
	c.pipelines()
	c.imageTriggers()
}

// repos checks repository names are unique; like Config.Repo, it ignores case.
func (c *checker) repos() {
	first := map[string]int{}
	for i, r := range c.cfg.Repos {
		at := c.tree.at("repos", i, "name")
		key := strings.ToLower(r.Name)
		if line, dup := first[key]; dup {
			c.p.add(at, "repo %q is listed twice (first at line %d)", r.Name, line)
			continue
		}
		first[key] = at.line
		c.cloneURL(i, r)
	}
}

// cloneURL refuses credentials in a clone URL, which every run records in
// its history, and clone_auth where git would not send it.
func (c *checker) cloneURL(i int, r Repo) {
	u, err := url.Parse(r.CloneURL)
	isHTTP := err == nil && (u.Scheme == "http" || u.Scheme == "https")
	if isHTTP && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			c.p.add(c.tree.at("repos", i, "clone_url"), "holds a password, which would be recorded in every run's history; "+
				"remove it and set clone_auth.password (env or file) instead")
		}
	}
	if r.CloneAuth != nil && !isHTTP {
		c.p.add(c.tree.at("repos", i, "clone_auth"), "is for http(s) clone URLs; %q is not one (ssh uses the worker's keys)", r.CloneURL)
	}
}

func (c *checker) pipelines() {
	first := map[string]int{}
	for i, pl := range c.cfg.Pipelines {
		at := c.tree.at("pipelines", i, "name")
		if line, dup := first[pl.Name]; dup {
			c.p.add(at, "pipeline %q is defined twice (first at line %d)", pl.Name, line)
		} else {
			first[pl.Name] = at.line
		}
		if c.cfg.Repo(pl.Repo) == nil {
			c.p.add(c.tree.at("pipelines", i, "repo"), "repo %q is not listed under repos", pl.Repo)
		}
		c.triggers(i, pl.Triggers)
		c.buildAndTest(i, pl.Stages)
		c.distribute(i, pl.Stages.Distribute)
		c.publish(i, pl.Stages)
		c.approvers(i, pl.Stages)
		c.lifecycle(i, pl)
	}
}

// distribute checks that each account and region is a target once: two
// entries for one destination would copy the AMI there twice.
func (c *checker) distribute(i int, d *DistributeStage) {
	if d == nil {
		return
	}
	first := map[string]int{}
	for j, t := range d.Targets {
		c.targetUpdates(i, j, t)
		for k, r := range t.Regions {
			at := c.tree.at("pipelines", i, "stages", "distribute", "targets", j, "regions", k, "region")
			key := t.Account + "/" + r.Region
			if line, dup := first[key]; dup {
				c.p.add(at, "account %s, region %s is a target twice (first at line %d)", t.Account, r.Region, line)
				continue
			}
			first[key] = at.line
		}
	}
}

func (c *checker) triggers(i int, t Triggers) {
	base := []any{"pipelines", i, "triggers"}
	c.globs(t.Branch, base, "branch")
	c.globs(t.Tag, base, "tag")
	if t.Review != nil {
		c.globs(t.Review.Branches, base, "review", "branches")
	}
	first := map[string]int{}
	for j, s := range t.Schedule {
		sched := slices.Concat(base, []any{"schedule", j})
		c.schedule(s, sched)
		if prev, dup := first[s.Name]; dup {
			c.p.add(c.at(sched, "name"),
				"schedule name %q is used twice (first at line %d); a schedule's name defaults to its ref", s.Name, prev)
			continue
		}
		first[s.Name] = c.at(sched).line
	}
}

// at places the value at base followed by more.
func (c *checker) at(base []any, more ...any) place {
	return c.tree.at(slices.Concat(base, more)...)
}

// globs checks doublestar syntax.
func (c *checker) globs(globs []string, base []any, more ...any) {
	list := slices.Concat(base, more)
	for j, g := range globs {
		if !doublestar.ValidatePattern(g) {
			c.p.add(c.at(list, j), "%q is not a valid glob", g)
		}
	}
}

func (c *checker) schedule(s ScheduleTrigger, at []any) {
	switch _, err := cron.ParseStandard(s.Cron); {
	case strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ="):
		c.p.add(c.at(at, "cron"), "set the time zone with the timezone field, not in cron")
	case err != nil:
		c.p.add(c.at(at, "cron"), "%q is not a valid cron expression: %v", s.Cron, err)
	}
	switch _, err := time.LoadLocation(s.TimeZone); {
	case s.TimeZone == "Local":
		c.p.add(c.at(at, "timezone"), `"Local" depends on the server; name an IANA zone such as "Europe/Berlin"`)
	case err != nil:
		c.p.add(c.at(at, "timezone"), "%q is not a known IANA time zone", s.TimeZone)
	}
}

// approvers checks that each "@group" a gate names is under
// approver_groups.
func (c *checker) approvers(i int, s Stages) {
	for stage, a := range map[string]*Approval{"distribute": s.Distribute.gate(), "publish": s.Publish.gate()} {
		if a == nil {
			continue
		}
		for j, name := range a.Approvers {
			group, ok := strings.CutPrefix(name, "@")
			if !ok || c.cfg.ApproverGroups[group] != nil {
				continue
			}
			known := slices.Sorted(maps.Keys(c.cfg.ApproverGroups))
			c.p.add(c.tree.at("pipelines", i, "stages", stage, "approval", "approvers", j),
				"approver group %q is not under approver_groups (groups: %s)", group, strings.Join(known, ", "))
		}
	}
}
