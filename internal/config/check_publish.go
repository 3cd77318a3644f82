package config

import (
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// publish checks what the schema cannot of a pipeline's publish stage: the
// stages it takes its inputs from, and the account its AMI map is for.
func (c *checker) publish(i int, s Stages) {
	p := s.Publish
	if p == nil {
		return
	}
	base := []any{"pipelines", i, "stages", "publish"}
	for j, img := range p.Images {
		if img.Dockerfile == "" && s.Build == nil {
			c.p.add(c.tree.at(append(base, "images", j, "files")...), "files come from the build stage's artifacts; add a build stage")
		}
		if img.Dockerfile != "" && img.Base != "" {
			c.p.add(c.tree.at(append(base, "images", j, "base")...), "a Dockerfile names its own base; base is for files images")
		}
		for _, p := range []struct{ field, path string }{{"dockerfile", img.Dockerfile}, {"context", img.Context}} {
			if p.path != "" && !filepath.IsLocal(filepath.FromSlash(p.path)) && path.Clean(p.path) != "." {
				c.p.add(c.tree.at(append(base, "images", j, p.field)...), "%q leaves the repository", p.path)
			}
		}
	}
	cf := p.CloudFormation
	if cf == nil {
		return
	}
	if s.Bake == nil {
		c.p.add(c.tree.at(append(base, "cloudformation")...), "the templates carry the baked AMI's map; add a bake stage")
	}
	if cf.Account != "" && !distributesTo(s.Distribute, cf.Account) {
		c.p.add(c.tree.at(append(base, "cloudformation", "account")...),
			"account %s is not a distribution target of this pipeline", cf.Account)
	}
}

func distributesTo(d *DistributeStage, account string) bool {
	if d == nil {
		return false
	}
	return slices.ContainsFunc(d.Targets, func(t Target) bool { return t.Account == account })
}

// imageTriggers checks that every published image has one publisher, that
// every image trigger names a published image, and that image triggers form
// no cycle, which would rebuild forever.
func (c *checker) imageTriggers() {
	publisher := map[string]int{}
	for i, pl := range c.cfg.Pipelines {
		if pl.Stages.Publish == nil {
			continue
		}
		for j, img := range pl.Stages.Publish.Images {
			if k, dup := publisher[img.Name]; dup && k != i {
				c.p.add(c.tree.at("pipelines", i, "stages", "publish", "images", j, "name"),
					"image %s is also published by pipeline %q; an image has one publisher", img.Name, c.cfg.Pipelines[k].Name)
				continue
			}
			publisher[img.Name] = i
		}
	}
	// next[i] are the pipelines a publish of pipeline i starts.
	next := make([][]int, len(c.cfg.Pipelines))
	for i, pl := range c.cfg.Pipelines {
		for j, t := range pl.Triggers.Image {
			k, ok := publisher[t.Name]
			switch {
			case !ok:
				c.p.add(c.tree.at("pipelines", i, "triggers", "image", j, "name"),
					"no pipeline publishes image %s (published: %s)", t.Name, listOrNone(publisher))
			default:
				next[k] = append(next[k], i)
			}
		}
	}
	if cycle := findCycle(next); cycle != nil {
		names := make([]string, len(cycle))
		for n, i := range cycle {
			names[n] = c.cfg.Pipelines[i].Name
		}
		c.p.add(c.tree.at("pipelines", cycle[0], "triggers", "image"),
			"image triggers form a cycle, which would rebuild forever: %s", strings.Join(names, " → "))
	}
}

// findCycle returns one cycle of the graph as a path that starts and ends at
// the same node, or nil. Nodes are visited in order, so the answer is stable.
func findCycle(next [][]int) []int {
	const (
		unseen = iota
		open
		closed
	)
	state := make([]int, len(next))
	var path []int
	var visit func(int) []int
	visit = func(n int) []int {
		state[n] = open
		path = append(path, n)
		for _, m := range next[n] {
			switch state[m] {
			case open:
				start := slices.Index(path, m)
				return append(slices.Clone(path[start:]), m)
			case unseen:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = closed
		return nil
	}
	for n := range next {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

func listOrNone(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
