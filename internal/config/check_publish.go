package config

import (
	"fmt"
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
	// next[i] are the pipelines a publish or a tested AMI of pipeline i
	// starts, and via[i][k] the kind of trigger of that edge.
	next := make([][]int, len(c.cfg.Pipelines))
	via := map[[2]int]string{}
	for i, pl := range c.cfg.Pipelines {
		for j, t := range pl.Triggers.Image {
			k, ok := publisher[t.Name]
			switch {
			case !ok:
				c.p.add(c.tree.at("pipelines", i, "triggers", "image", j, "name"),
					"no pipeline publishes image %s (published: %s)", t.Name, listOrNone(publisher))
			default:
				next[k] = append(next[k], i)
				via[[2]int{k, i}] = "image"
			}
		}
		for j, t := range pl.Triggers.AMI {
			if k, ok := c.amiTrigger(i, j, t); ok {
				next[k] = append(next[k], i)
				if via[[2]int{k, i}] == "" {
					via[[2]int{k, i}] = "AMI"
				}
			}
		}
	}
	if cycle := findCycle(next); cycle != nil {
		c.cycle(cycle, via)
	}
}

// cycle reports a cycle of triggers as its path, at the trigger that
// closes it. A path through both kinds of trigger says which each step is.
func (c *checker) cycle(cycle []int, via map[[2]int]string) {
	kinds := make([]string, len(cycle))
	for n := 1; n < len(cycle); n++ {
		kinds[n] = via[[2]int{cycle[n-1], cycle[n]}]
	}
	mixed := slices.Contains(kinds[1:], "AMI") && slices.Contains(kinds[1:], "image")
	names := []string{c.cfg.Pipelines[cycle[0]].Name}
	for n := 1; n < len(cycle); n++ {
		name := c.cfg.Pipelines[cycle[n]].Name
		if mixed {
			name = fmt.Sprintf("(%s) %s", kinds[n], name)
		}
		names = append(names, name)
	}
	which, last := kinds[len(kinds)-1]+" triggers", strings.ToLower(kinds[len(kinds)-1])
	if mixed {
		which = "image and AMI triggers"
	}
	c.p.add(c.tree.at("pipelines", cycle[0], "triggers", last),
		"%s form a cycle, which would rebuild forever: %s", which, strings.Join(names, " → "))
}

// amiTrigger checks an AMI trigger names another pipeline that bakes and
// tests, and returns that pipeline's index.
func (c *checker) amiTrigger(i, j int, t AMITrigger) (int, bool) {
	at := c.tree.at("pipelines", i, "triggers", "ami", j, "pipeline")
	k := slices.IndexFunc(c.cfg.Pipelines, func(p Pipeline) bool { return p.Name == t.Pipeline })
	switch {
	case k < 0:
		bakers := map[string]int{}
		for n, p := range c.cfg.Pipelines {
			if p.Stages.Bake != nil {
				bakers[p.Name] = n
			}
		}
		c.p.add(at, "no pipeline is named %q (pipelines that bake: %s)", t.Pipeline, listOrNone(bakers))
	case k == i:
		c.p.add(at, "a pipeline cannot be triggered by its own AMIs, which would rebuild forever")
	case c.cfg.Pipelines[k].Stages.Bake == nil || c.cfg.Pipelines[k].Stages.Test == nil:
		c.p.add(at, "pipeline %q must bake and test its AMI: only an AMI that passed its test triggers", t.Pipeline)
	default:
		return k, true
	}
	return 0, false
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
