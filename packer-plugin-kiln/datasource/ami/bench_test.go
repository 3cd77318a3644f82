package ami

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

// The lookup's account: benchPipelines × benchRefs × benchPerRef AMIs (200)
// in benchRegion, a third each passed, failed and untested.
var (
	benchPipelines = []string{"bench-base", "bench-app", "bench-web", "bench-db"}
	benchRefs      = []string{"refs/heads/main", "refs/heads/dev", "refs/tags/v1.0.0", "refs/pull/7/head", "refs/heads/feature-x"}
)

const (
	benchPerRef = 10
	benchRegion = "eu-west-1"
)

// BenchmarkKilnAMILookup times Find, the data source's lookup, for the
// newest passed AMI of one pipeline at "main" among 200 AMIs of 4
// pipelines and 5 refs, against a bare DescribeImages with the same
// filters: what any lookup of that AMI must cost. The two alternate in
// each iteration, on one client. It reports their medians and the ratio.
//
//	go test ./datasource/ami -run '^$' -bench KilnAMILookup -benchtime 500x -count 3
func BenchmarkKilnAMILookup(b *testing.B) {
	moto.Reset(b) // the tests, run first, leave AMIs of their own
	c := moto.EC2(benchRegion)
	want := seedLookup(b, c)
	ctx := context.Background()
	q := Query{Pipeline: benchPipelines[0], Ref: "main", Region: benchRegion}
	bare := &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + TagPipeline), Values: []string{q.Pipeline}},
		{Name: aws.String("tag:" + TagRef), Values: RefValues(q.Ref)},
		{Name: aws.String("state"), Values: []string{"available"}},
		{Name: aws.String("tag:" + TagTest), Values: []string{TestPassed}},
	}}
	var finds, bares []time.Duration
	lookup := func() {
		t0 := time.Now()
		out, err := Find(ctx, c, q)
		finds = append(finds, time.Since(t0))
		if err != nil || out.ID != want {
			b.Fatalf("Find: %+v, %v; want %s", out, err, want)
		}
	}
	describe := func() {
		t0 := time.Now()
		out, err := c.DescribeImages(ctx, bare)
		bares = append(bares, time.Since(t0))
		if err != nil || len(out.Images) == 0 {
			b.Fatalf("DescribeImages: %d images, %v", len(out.Images), err)
		}
	}
	lookup() // the first call of a client resolves its endpoint and credentials
	describe()
	finds, bares = nil, nil
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			lookup()
			describe()
		} else {
			describe()
			lookup()
		}
	}
	b.StopTimer()
	f, d := median(finds), median(bares)
	b.ReportMetric(0, "ns/op") // the sum of both; their own figures follow
	b.ReportMetric(f, "find-ms")
	b.ReportMetric(d, "describe-ms")
	b.ReportMetric(f/d, "find/describe")
	b.ReportMetric(f-d, "find-describe-ms")
}

// seedLookup registers the 200 AMIs, a second apart per round, so creation
// dates order them, and returns the one Find must return: the newest passed
// AMI of the first pipeline at refs/heads/main.
func seedLookup(b *testing.B, c *ec2.Client) string {
	b.Helper()
	outcomes := []string{TestPassed, "failed", ""}
	var want string
	for n := range benchPerRef {
		for _, p := range benchPipelines {
			for _, ref := range benchRefs {
				commit := fmt.Sprintf("c%02d", n)
				outcome := outcomes[(n+len(p)+len(ref))%len(outcomes)]
				id := mototest.Image(b, c, fmt.Sprintf("%s-%s-%s", p, commit, ref), tagged(p, ref, commit, outcome))
				if p == benchPipelines[0] && ref == "refs/heads/main" && outcome == TestPassed {
					want = id
				}
			}
		}
		nextSecond()
	}
	if want == "" {
		b.Fatal("no passed AMI of the looked-up pipeline and ref")
	}
	return want
}

// median is the median of ds in ms.
func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}
