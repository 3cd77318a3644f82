// Package amifake is an in-memory EC2 holding AMIs in several regions, for
// tests of code that finds and tags them. It answers DescribeImages (by ID,
// or by tag: and state filters) and CreateTags like EC2 does; every image it
// holds is available.
package amifake

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/ami"
)

// Images holds AMIs by region; the zero value is empty and ready.
type Images struct {
	mu     sync.Mutex
	images []*image
}

type image struct {
	region, id, created string
	tags                map[string]string
}

// Add puts an AMI in region, created at created (EC2's CreationDate, which
// sorts as text), with tags; later tagging changes the map.
func (s *Images) Add(region, id, created string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = append(s.images, &image{region: region, id: id, created: created, tags: tags})
}

// Tags returns the tags of the AMI id in region, nil when there is none.
func (s *Images) Tags(region, id string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, im := range s.images {
		if im.region == region && im.id == id {
			return im.tags
		}
	}
	return nil
}

// Clients serves every region of s, whatever the principal. The calls other
// than DescribeImages and CreateTags go to rest, which may be nil when the
// test makes none; there is no KMS or SSM.
func (s *Images) Clients(rest ami.EC2API) ami.Clients { return clients{s, rest} }

type clients struct {
	images *Images
	rest   ami.EC2API
}

func (c clients) EC2(_ context.Context, region string, _ ami.Principal) (ami.EC2API, error) {
	return &regionEC2{EC2API: c.rest, images: c.images, region: region}, nil
}

func (c clients) KMS(context.Context, string, ami.Principal) (ami.KMSAPI, error) { return nil, nil }

func (c clients) SSM(context.Context, string, ami.Principal) (ami.SSMAPI, error) { return nil, nil }

// regionEC2 is one region of Images.
type regionEC2 struct {
	ami.EC2API
	images *Images
	region string
}

func (r *regionEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	r.images.mu.Lock()
	defer r.images.mu.Unlock()
	out := &ec2.DescribeImagesOutput{}
	for _, im := range r.images.images {
		if im.region != r.region || (len(in.ImageIds) > 0 && in.ImageIds[0] != im.id) || !matches(im, in.Filters) {
			continue
		}
		img := ec2types.Image{ImageId: aws.String(im.id), CreationDate: aws.String(im.created), State: ec2types.ImageStateAvailable}
		for k, v := range im.tags {
			img.Tags = append(img.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out.Images = append(out.Images, img)
	}
	return out, nil
}

func matches(im *image, filters []ec2types.Filter) bool {
	for _, f := range filters {
		name := aws.ToString(f.Name)
		if name == "state" {
			continue // every image is available
		}
		key, ok := strings.CutPrefix(name, "tag:")
		if !ok {
			panic("unexpected filter " + name)
		}
		if v, ok := im.tags[key]; !ok || !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}

func (r *regionEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	r.images.mu.Lock()
	defer r.images.mu.Unlock()
	for _, im := range r.images.images {
		if im.region == r.region && slices.Contains(in.Resources, im.id) {
			for _, t := range in.Tags {
				im.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}
