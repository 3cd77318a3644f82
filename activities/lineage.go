package activities

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
)

// LineageInput names an AMI of the worker's account.
type LineageInput struct {
	AMI    string `json:"ami"`
	Region string `json:"region"`
}

// Lineage is an AMI's chain: its ancestors, base first, and the AMIs
// built on it and on them, each after its parent.
type Lineage struct {
	Ancestors   []ami.Image `json:"ancestors,omitempty"`
	Image       ami.Image   `json:"image"`
	Descendants []ami.Image `json:"descendants,omitempty"`
}

// maxLineage bounds a walk, against a loop of hand-made tags.
const maxLineage = 64

// AMILineage walks an AMI's kiln:parent-ami tags up to the first AMI no
// trigger made, and down through every AMI built on it: in its own region
// and in every region a pipeline of kiln.yaml bakes in, where a dependent
// given a base from another region is.
func (a *Activities) AMILineage(ctx context.Context, in LineageInput) (*Lineage, error) {
	img, ok, err := a.describeAMI(ctx, in.Region, in.AMI)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, permanent(awsx.TypeNotFound, "no AMI %s in %s (as the worker's account sees it)", in.AMI, in.Region)
	}
	out := &Lineage{Image: img}
	seen := map[string]bool{img.ID: true}
	for up := img; up.Parent != "" && len(out.Ancestors) < maxLineage && !seen[up.Parent]; {
		seen[up.Parent] = true
		parent, ok, err := a.describeAMI(ctx, cmp.Or(up.ParentRegion, up.Region), up.Parent)
		if err != nil {
			return nil, err
		}
		if !ok {
			parent = ami.Image{ID: up.Parent, Region: cmp.Or(up.ParentRegion, up.Region), State: "gone"}
		}
		out.Ancestors = append([]ami.Image{parent}, out.Ancestors...)
		up = parent
	}
	regions := map[string]bool{}
	for _, p := range a.Config.Pipelines {
		if p.Stages.Bake != nil {
			regions[p.Stages.Bake.Region] = true
		}
	}
	queue := []ami.Image{img}
	for len(queue) > 0 && len(out.Descendants) < maxLineage {
		parent := queue[0]
		queue = queue[1:]
		regions[parent.Region] = true
		for _, region := range slices.Sorted(maps.Keys(regions)) {
			c, err := ami.EC2(ctx, a.clients(), region, ami.Principal{})
			if err != nil {
				return nil, err
			}
			children, err := ami.Children(ctx, c, region, parent.ID)
			if err != nil {
				return nil, err
			}
			for _, child := range children {
				if !seen[child.ID] {
					seen[child.ID] = true
					out.Descendants = append(out.Descendants, child)
					queue = append(queue, child)
				}
			}
		}
	}
	return out, nil
}

func (a *Activities) describeAMI(ctx context.Context, region, id string) (ami.Image, bool, error) {
	c, err := ami.EC2(ctx, a.clients(), region, ami.Principal{})
	if err != nil {
		return ami.Image{}, false, err
	}
	return ami.Describe(ctx, c, region, id)
}
