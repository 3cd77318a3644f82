package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Lifecycle says how long the AMIs a pipeline made live, in every account
// and region kiln put them: a retention run deprecates, then disables,
// then deregisters them (with their snapshots) as they age, never touching
// the newest Keep, those younger than KeepDays, or any still in use.
type Lifecycle struct {
	Retention `yaml:",inline"`
	// Refs override the pipeline's retention for the AMIs of matching refs;
	// the first match wins.
	Refs []RefRetention `yaml:"refs,omitempty" json:"refs,omitempty"`
	// Schedule is when the retention run starts, as a cron expression or a
	// descriptor; default "@daily".
	Schedule string `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// Retention is one retention policy. Ages count from the AMI's creation.
type Retention struct {
	// Keep is how many of the newest AMIs of a ref are never touched.
	Keep int `yaml:"keep,omitempty" json:"keep,omitempty"`
	// KeepDays keeps every AMI younger than this many days.
	KeepDays int `yaml:"keep_days,omitempty" json:"keep_days,omitempty"`
	// DeprecateAfter, DisableAfter and DeleteAfter are the ages at which an
	// AMI is deprecated, disabled, and deregistered with its snapshots;
	// zero skips that step.
	DeprecateAfter Age `yaml:"deprecate_after,omitempty" json:"deprecate_after,omitempty"`
	DisableAfter   Age `yaml:"disable_after,omitempty" json:"disable_after,omitempty"`
	DeleteAfter    Age `yaml:"delete_after,omitempty" json:"delete_after,omitempty"`
}

// RefRetention is the retention of the AMIs whose kiln:ref matches Ref, a
// full ref or glob such as "refs/pull/**" or "refs/tags/v*".
type RefRetention struct {
	Ref       string `yaml:"ref" json:"ref"`
	Retention `yaml:",inline"`
}

// DefaultRetentionSchedule is when retention runs without a schedule.
const DefaultRetentionSchedule = "@daily"

// For returns the retention of an AMI of ref.
func (l *Lifecycle) For(ref string) Retention {
	for _, r := range l.Refs {
		if ok, _ := doublestar.Match(r.Ref, ref); ok {
			return r.Retention
		}
	}
	return l.Retention
}

// ScheduleOrDefault is the retention's schedule.
func (l *Lifecycle) ScheduleOrDefault() string {
	if l.Schedule == "" {
		return DefaultRetentionSchedule
	}
	return l.Schedule
}

// Age is a duration written in days ("30d") or as a Go duration ("36h").
type Age time.Duration

// UnmarshalYAML parses "<n>d" or a Go duration.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseAge(n.Value)
	if err != nil {
		return err
	}
	*a = Age(v)
	return nil
}

// MarshalYAML writes whole days as "<n>d".
func (a Age) MarshalYAML() (any, error) { return a.String(), nil }

// String is "<n>d" for whole days, else the Go duration.
func (a Age) String() string {
	d := time.Duration(a)
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// ParseAge parses "<n>d" or a Go duration.
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an age such as 30d or 36h", s)
	}
	return d, nil
}

// lifecycle checks a pipeline's lifecycle: it needs AMIs to retire, steps
// in the order EC2 takes them, valid ref globs and a valid schedule.
func (c *checker) lifecycle(i int, pl Pipeline) {
	l := pl.Lifecycle
	if l == nil {
		return
	}
	at := []any{"pipelines", i, "lifecycle"}
	if pl.Stages.Bake == nil {
		c.p.add(c.at(at), "pipeline %q bakes no AMI to retire; add a bake stage or remove lifecycle", pl.Name)
	}
	c.retention(l.Retention, at)
	for j, r := range l.Refs {
		if !doublestar.ValidatePattern(r.Ref) {
			c.p.add(c.at(at, "refs", j, "ref"), "%q is not a valid glob", r.Ref)
		}
		c.retention(r.Retention, append(slices.Clone(at), "refs", j))
	}
	if _, err := cron.ParseStandard(l.ScheduleOrDefault()); err != nil {
		c.p.add(c.at(at, "schedule"), "%q is not a valid cron expression: %v", l.Schedule, err)
	}
}

// retention checks the steps come in EC2's order: an AMI is deprecated
// before it is disabled, and disabled before it is deleted.
func (c *checker) retention(r Retention, at []any) {
	steps := []struct {
		name string
		age  Age
	}{{"deprecate_after", r.DeprecateAfter}, {"disable_after", r.DisableAfter}, {"delete_after", r.DeleteAfter}}
	var prev string
	var prevAge Age
	for _, s := range steps {
		if s.age == 0 {
			continue
		}
		if prev != "" && s.age < prevAge {
			c.p.add(c.at(at, s.name), "%s (%s) comes before %s (%s); the steps go deprecate, disable, delete", s.name, s.age, prev, prevAge)
		}
		prev, prevAge = s.name, s.age
	}
}
