package activities

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
)

// storedImage is an AMI in imageStore.
type storedImage struct {
	region, id, created string
	tags                map[string]string
}

// imageStore holds AMIs in several regions, and answers DescribeImages (by
// ID, or by tag: and state filters) and CreateTags on them like EC2 does.
type imageStore struct {
	mu     sync.Mutex
	images []*storedImage
}

func (s *imageStore) add(region, id, created string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = append(s.images, &storedImage{region: region, id: id, created: created, tags: tags})
}

func (s *imageStore) tags(region, id string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, im := range s.images {
		if im.region == region && im.id == id {
			return im.tags
		}
	}
	return nil
}

// regionEC2 is one region of imageStore; instances are fakeEC2's.
type regionEC2 struct {
	*fakeEC2
	store  *imageStore
	region string
}

func (r *regionEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	out := &ec2.DescribeImagesOutput{}
	for _, im := range r.store.images {
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

func matches(im *storedImage, filters []ec2types.Filter) bool {
	for _, f := range filters {
		name := aws.ToString(f.Name)
		if name == "state" {
			continue // every stored image is available
		}
		key, ok := strings.CutPrefix(name, "tag:")
		if !ok {
			panic("unexpected filter " + name)
		}
		if v, ok := im.tags[key]; !ok || !contains(f.Values, v) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (r *regionEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	for _, im := range r.store.images {
		if im.region == r.region && contains(in.Resources, im.id) {
			for _, t := range in.Tags {
				im.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

// storeAWS serves each region of the store.
type storeAWS struct {
	store *imageStore
	inst  *fakeEC2
}

func (s storeAWS) EC2(_ context.Context, region string, _ Principal) (EC2API, error) {
	return &regionEC2{fakeEC2: s.inst, store: s.store, region: region}, nil
}
func (s storeAWS) KMS(context.Context, string, Principal) (KMSAPI, error) { return nil, nil }

func bakeTags(run string) map[string]string {
	return map[string]string{TagPipeline: "p", TagCommit: "c0ffee", TagRun: run}
}

// reuseInput bakes in us-east-1 and tests in us-west-2.
func reuseInput() BakeInput {
	return BakeInput{RunID: "p/main/9", Pipeline: "p", Plan: Plan{Commit: "c0ffee",
		Bake: &config.BakeStage{Region: "us-east-1"}, Test: &config.TestStage{Region: "us-west-2"}}}
}

// TestAMIPassTagsEveryRegion: a passed test tags the AMIs of the bake in
// every region, not only the one it tested in the test region.
func TestAMIPassTagsEveryRegion(t *testing.T) {
	store := &imageStore{}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"} {
		store.add(region, id, "2026-01-01", bakeTags("p/main/1"))
	}
	inst := &fakeEC2{state: ec2types.InstanceStateNameRunning, tags: map[string]string{}}
	in := testInput(t, "true")
	in.Plan.Test.Region = "us-west-2"
	in.AMIs = map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}
	res, err := executeTest(t, &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), AWS: storeAWS{store, inst}}, in, nil)
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Equal(t, "ami-w", res.AMI)
	for region, id := range in.AMIs {
		assert.Equal(t, TestPassed, store.tags(region, id)[TagTest], "%s in %s", id, region)
	}
}

// TestBakeTagsRegions: a bake's AMIs name all the bake's regions, which is
// how a reuse finds them.
func TestBakeTagsRegions(t *testing.T) {
	store := &imageStore{}
	amis := map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}
	for region, id := range amis {
		store.add(region, id, "2026-01-01", map[string]string{})
	}
	a := &Activities{Log: zerolog.Nop(), AWS: storeAWS{store, &fakeEC2{}}}
	require.NoError(t, a.tagAMIs(context.Background(), reuseInput(), amis))
	for region, id := range amis {
		tags := store.tags(region, id)
		assert.Equal(t, "eu-west-1,us-east-1,us-west-2", tags[TagRegions], "%s in %s", id, region)
		assert.Equal(t, "p/main/9", tags[TagRun])
	}
}

// TestRegionTagsSplitLongLists: more regions than one tag value holds go
// on in further tags, and read back whole.
func TestRegionTagsSplitLongLists(t *testing.T) {
	amis := map[string]string{}
	for i := range 40 {
		amis[fmt.Sprintf("xx-region-%02d", i)] = "ami"
	}
	tags := regionTags(amis)
	require.Greater(t, len(tags), 1)
	for _, tag := range tags {
		assert.LessOrEqual(t, len(aws.ToString(tag.Value)), maxTagValue)
	}
	assert.Equal(t, TagRegions+":2", aws.ToString(tags[1].Key))
	assert.Len(t, bakeRegions(tagValues(tags)), 40)
}

// TestFindPassedAMIAcrossRegions: the test passed in us-west-2 while the
// bake region is us-east-1 (and, as before this fix, only the tested AMI was
// tagged): the reuse finds it, and returns the bake's AMIs in all its
// regions, from the newest passed bake only, and never a distributed copy.
func TestFindPassedAMIAcrossRegions(t *testing.T) {
	store := &imageStore{}
	regions := map[string]string{TagRegions: "eu-west-1,us-east-1,us-west-2"}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"} {
		tags := bakeTags("p/main/1")
		tags[TagRegions] = regions[TagRegions]
		store.add(region, id, "2026-01-02", tags)
	}
	store.tags("us-west-2", "ami-w")[TagTest] = TestPassed
	// An older passed bake, and a newer one that failed its test.
	old := bakeTags("p/main/0")
	old[TagTest] = TestPassed
	store.add("us-west-2", "ami-old", "2026-01-01", old)
	store.add("us-east-1", "ami-old-e", "2026-01-01", bakeTags("p/main/0"))
	// A newer distributed copy of the passed bake in one of its regions.
	copied := bakeTags("p/main/1")
	copied[TagSource], copied[TagTest] = "ami-e", TestPassed
	store.add("eu-west-1", "ami-copy", "2026-01-05", copied)
	failed := bakeTags("p/main/2")
	failed[TagTest] = TestFailed
	store.add("us-west-2", "ami-failed", "2026-01-03", failed)

	a := &Activities{Log: zerolog.Nop(), AWS: storeAWS{store, &fakeEC2{}}}
	amis, run, err := a.findPassedAMI(context.Background(), reuseInput())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}, amis)
	assert.Equal(t, "p/main/1", run, "the run whose bake passed")
}

// TestFindPassedAMIIncomplete: a passed bake whose AMI in one of its regions
// is gone is not reused: the run bakes again.
func TestFindPassedAMIIncomplete(t *testing.T) {
	store := &imageStore{}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w"} {
		tags := bakeTags("p/main/1")
		tags[TagRegions], tags[TagTest] = "eu-west-1,us-east-1,us-west-2", TestPassed
		store.add(region, id, "2026-01-02", tags)
	}
	a := &Activities{Log: zerolog.Nop(), AWS: storeAWS{store, &fakeEC2{}}}
	amis, _, err := a.findPassedAMI(context.Background(), reuseInput())
	require.NoError(t, err)
	assert.Nil(t, amis)
}

// TestFindPassedAMIUntaggedRun: an AMI tagged passed by hand, with no
// kiln:run, is reused on its own when it is in the bake region.
func TestFindPassedAMIUntaggedRun(t *testing.T) {
	store := &imageStore{}
	store.add("us-east-1", "ami-hand", "2026-01-02", map[string]string{TagPipeline: "p", TagCommit: "c0ffee", TagTest: TestPassed})
	a := &Activities{Log: zerolog.Nop(), AWS: storeAWS{store, &fakeEC2{}}}
	amis, run, err := a.findPassedAMI(context.Background(), reuseInput())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"us-east-1": "ami-hand"}, amis)
	assert.Empty(t, run, "tagged by hand: no run to name")
}
