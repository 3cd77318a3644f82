package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// The retention benchmarked: the worker's own account and two copy targets'
// accounts, reached by their roles, each in the 16 regions of distRegions:
// 48 places, with retAMIs AMIs of the pipeline in each. The lifecycle keeps
// a ref's retKeep newest bakes and deletes the rest, so each run deletes
// (retAMIs - retKeep) AMIs and their snapshots in every place.
var retAccounts = []string{awsproxy.DefaultAccount, "222222222222", "333333333333"}

const (
	retPipeline = "ret48"
	retRef      = "refs/heads/main"
	retAMIs     = 20
	retKeep     = 5
	// retRunTimeout bounds one retention; it is a hang guard, not a measure.
	retRunTimeout = 10 * time.Minute
)

// BenchmarkRetention retires the old AMIs of one pipeline in 48 places,
// once with kiln's Retention workflow on a real worker and the embedded
// Temporal server, once with a loop calling internal/ami's List, InUse,
// Plan and Retire one place after another: the same work, without
// Temporal and without parallelism. Every iteration registers fresh AMIs
// before each side (off the clock); the side that goes first alternates.
// It reports both wall times, their ratio, and the AWS calls each made, as
// the recording proxy saw them.
//
// moto answers a call in a few milliseconds and, being one Python process,
// one call at a time, where EC2 answers in tens to hundreds of
// milliseconds, many calls at once. So each sub-benchmark holds every call
// in the proxy for a latency L before moto sees it: L=0 is moto as it is,
// L=50ms a modest stand-in for EC2's round trip. Run it alone; it starts
// moto and Temporal:
//
//	go test ./test/bench -run '^$' -bench Retention -benchtime 1x -count 2 -timeout 30m
func BenchmarkRetention(b *testing.B) {
	r := newRetRig(b)
	for _, l := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("L=%s", l), func(b *testing.B) { r.bench(b, l) })
	}
}

// retTurns counts iterations across sub-benchmarks and -count repetitions,
// so the side that goes first alternates even at -benchtime 1x.
var retTurns int

func (r *retRig) bench(b *testing.B, latency time.Duration) {
	for _, action := range []string{"DescribeImages", "DescribeLaunchTemplates", "DescribeInstances",
		"DeregisterImage", "DeleteSnapshot", "AssumeRole"} {
		r.proxy.Delay(action, latency)
	}
	var kiln, seq retSample
	b.ResetTimer()
	for i := range b.N {
		sides := []func(*testing.B, int) retSample{r.kiln, r.sequential}
		if retTurns++; retTurns%2 == 0 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			b.StopTimer()
			r.seed(b)
			from := len(r.proxy.Requests())
			b.StartTimer()
			s := side(b, i)
			b.StopTimer()
			s.analyse(r.proxy.Requests()[from:])
			r.check(b, s)
			s.log(b)
			if s.name == "kiln" {
				kiln.add(s)
			} else {
				seq.add(s)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	n, places := float64(b.N), float64(len(retAccounts)*len(distRegions))
	b.ReportMetric(0, "ns/op") // the sum of both sides; their own figures follow
	b.ReportMetric(kiln.wall.Seconds()/n, "kiln-s")
	b.ReportMetric(seq.wall.Seconds()/n, "seq-s")
	b.ReportMetric(seq.wall.Seconds()/kiln.wall.Seconds(), "seq/kiln")
	b.ReportMetric(float64(kiln.calls)/n, "kiln-calls")
	b.ReportMetric(float64(seq.calls)/n, "seq-calls")
	b.ReportMetric(float64(kiln.calls)/n/places, "kiln-calls/place")
	b.ReportMetric(float64(seq.calls)/n/places, "seq-calls/place")
}

// retRig is moto behind the recording proxy, the embedded Temporal server
// and a kiln worker whose kiln.yaml has the pipeline and its lifecycle.
type retRig struct {
	moto  *motoserver.Server
	proxy *awsproxy.Proxy
	tmp   *testkit.Temporal
	cfg   *config.Config
	// aws is the sequential loop's own clients, which cache role
	// credentials as the worker's do.
	aws ami.Clients
	// seeds counts seedings, which name the AMIs and their runs.
	seeds int
}

func newRetRig(b *testing.B) *retRig {
	b.Helper()
	r := &retRig{moto: motoserver.Start(b), aws: &ami.DefaultClients{}}
	r.proxy = awsproxy.Start(b, r.moto.URL)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": r.proxy.URL,
	} {
		b.Setenv(k, v) // the SDK reads them on every activity
	}
	var err error
	if r.cfg, err = config.Parse("kiln.yaml", []byte(retConfig())); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if r.tmp, err = testkit.StartTemporal(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.tmp.Close)
	w := worker.New(r.tmp.Client, worker.Options{Config: r.cfg, DataDir: b.TempDir(), PackerBinary: "/bin/false", Log: zerolog.Nop()})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	return r
}

// retConfig is kiln.yaml: a pipeline that bakes in us-east-1 and copies to
// two other accounts in every region, so its AMIs are in the worker's
// account and both targets' in all 16.
func retConfig() string {
	var s strings.Builder
	s.WriteString("repos:\n  - name: bench/ret\n    clone_url: /nonexistent\n    webhook_secret: {env: UNUSED}\n")
	fmt.Fprintf(&s, "pipelines:\n  - name: %s\n    repo: bench/ret\n    triggers: {manual: true}\n", retPipeline)
	fmt.Fprintf(&s, "    lifecycle: {keep: %d, delete_after: 1s}\n    stages:\n", retKeep)
	s.WriteString("      bake: {template: ami.pkr.hcl, region: us-east-1}\n      distribute:\n        targets:\n")
	for _, account := range retAccounts[1:] {
		fmt.Fprintf(&s, "          - account: %q\n            role: %s\n            mode: copy\n            regions:\n", account, retRole(account))
		for _, region := range distRegions {
			fmt.Fprintf(&s, "              - {region: %s, kms_key: %s}\n", region, distKMSAlias)
		}
	}
	return s.String()
}

func retRole(account string) string { return "arn:aws:iam::" + account + ":role/kiln-distribute" }

// seed leaves exactly retAMIs fresh AMIs of the pipeline in every place,
// straight at moto so the proxy does not count it: it deregisters what the
// last side kept, registers new ones tagged as bakes of this seeding's runs
// (one run's images share kiln:run across places, as a bake's copies do),
// and waits until they are past delete_after.
func (r *retRig) seed(b *testing.B) {
	b.Helper()
	r.seeds++
	i := r.seeds
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := motoAt{url: r.moto.URL}
	type place struct{ account, region string }
	work := make(chan place)
	errs := make(chan error, len(retAccounts)*len(distRegions))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for p := range work {
				if err := seedPlace(ctx, m.ec2(p.account, p.region), i); err != nil {
					errs <- fmt.Errorf("%s/%s: %w", p.account, p.region, err)
				}
			}
		})
	}
	for _, account := range retAccounts {
		for _, region := range distRegions {
			work <- place{account, region}
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("seed: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // past delete_after; creation dates are to the second
}

func seedPlace(ctx context.Context, c *ec2.Client, i int) error {
	left, err := pipelineImages(ctx, c)
	if err != nil {
		return err
	}
	for _, im := range left {
		if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId}); err != nil {
			return err
		}
		for _, m := range im.BlockDeviceMappings {
			if m.Ebs != nil && m.Ebs.SnapshotId != nil {
				if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: m.Ebs.SnapshotId}); err != nil {
					return err
				}
			}
		}
	}
	for k := range retAMIs {
		// moto backs a registered image with a snapshot of its own, which
		// retention deletes with it.
		img, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
			Name: aws.String(fmt.Sprintf("ret-%d-%02d", i, k)), Architecture: ec2types.ArchitectureValuesX8664,
			VirtualizationType: aws.String("hvm"), RootDeviceName: aws.String("/dev/xvda"),
		})
		if err != nil {
			return err
		}
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(img.ImageId)}, Tags: []ec2types.Tag{
			{Key: aws.String(ami.TagPipeline), Value: aws.String(retPipeline)},
			{Key: aws.String(ami.TagRef), Value: aws.String(retRef)},
			{Key: aws.String(ami.TagRun), Value: aws.String(fmt.Sprintf("%s/main/%d-%02d", retPipeline, i, k))},
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

// pipelineImages are the pipeline's AMIs c's account holds in its region.
func pipelineImages(ctx context.Context, c *ec2.Client) ([]ec2types.Image, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + ami.TagPipeline), Values: []string{retPipeline}}}})
	if err != nil {
		return nil, err
	}
	return out.Images, nil
}

// kiln runs the Retention workflow to its result.
func (r *retRig) kiln(b *testing.B, i int) retSample {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), retRunTimeout)
	defer cancel()
	t0 := time.Now()
	run, err := r.tmp.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: fmt.Sprintf("%s/bench-%d-%d", workflows.RetentionWorkflowID(retPipeline), i, t0.UnixNano()), TaskQueue: workflows.TaskQueue,
	}, workflows.RetentionWorkflowName, workflows.RetentionInput{Pipeline: retPipeline})
	if err != nil {
		b.Fatal(err)
	}
	var res workflows.RetentionResult
	if err := run.Get(ctx, &res); err != nil {
		b.Fatalf("retention %s: %v", run.GetID(), err)
	}
	wall := time.Since(t0)
	if len(res.Failed) > 0 {
		b.Fatalf("retention %s failed places: %v", run.GetID(), res.Failed)
	}
	return retSample{name: "kiln", start: t0, wall: wall, retired: res.Retired, decisions: len(res.Decisions)}
}

// sequential does what the workflow does, one place after another: List
// and InUse in every place, one Plan over all of them (a bake's copies age
// with it, so retention plans across places), then Retire place by place.
func (r *retRig) sequential(b *testing.B, _ int) retSample {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), retRunTimeout)
	defer cancel()
	t0 := time.Now()
	n, decisions, err := r.retireInTurn(ctx, t0)
	wall := time.Since(t0)
	if err != nil {
		b.Fatalf("sequential retention: %v", err)
	}
	return retSample{name: "sequential", start: t0, wall: wall, retired: n, decisions: decisions}
}

func (r *retRig) retireInTurn(ctx context.Context, now time.Time) (retired, decisions int, err error) {
	plan, err := (&activities.Activities{Config: r.cfg}).PlanRetention(ctx, retPipeline)
	if err != nil {
		return 0, 0, err
	}
	session := "kiln-retention-" + retPipeline
	clients := map[activities.Place]ami.EC2API{}
	var images []ami.Image
	inUse := map[string]string{}
	placeOf := map[string]activities.Place{}
	for _, p := range plan.Places {
		c, err := ami.EC2(ctx, r.aws, p.Region, ami.Principal{Role: p.Role, Session: session})
		if err != nil {
			return 0, 0, err
		}
		clients[p] = c
		found, err := ami.List(ctx, c, p.Account, p.Region, retPipeline)
		if err != nil {
			return 0, 0, err
		}
		used, err := ami.InUse(ctx, c, p.Region)
		if err != nil {
			return 0, 0, err
		}
		for _, im := range found {
			placeOf[im.ID] = p
		}
		images = append(images, found...)
		for id, why := range used {
			if inUse[id] == "" {
				inUse[id] = why
			}
		}
	}
	plans := ami.Plan(images, activities.PolicyOf(plan.Lifecycle), inUse, now)
	for _, p := range plan.Places {
		for _, d := range plans {
			if d.Action == ami.ActionKeep || placeOf[d.Image.ID] != p {
				continue
			}
			if err := ami.Retire(ctx, clients[p], d, now); err != nil {
				return retired, len(plans), err
			}
			retired++
		}
	}
	return retired, len(plans), nil
}

// check fails unless the side decided on every AMI, retired all but the
// newest retKeep in each place, and left those.
func (r *retRig) check(b *testing.B, s retSample) {
	b.Helper()
	places := len(retAccounts) * len(distRegions)
	if s.decisions != places*retAMIs || s.retired != places*(retAMIs-retKeep) {
		b.Fatalf("%s decided on %d AMIs and retired %d; want %d and %d", s.name, s.decisions, s.retired, places*retAMIs, places*(retAMIs-retKeep))
	}
	m := motoAt{url: r.moto.URL}
	for _, account := range retAccounts {
		for _, region := range distRegions {
			left, err := pipelineImages(context.Background(), m.ec2(account, region))
			if err != nil {
				b.Fatal(err)
			}
			if len(left) != retKeep {
				b.Fatalf("%s left %d AMIs in %s/%s, want %d", s.name, len(left), account, region, retKeep)
			}
		}
	}
}

// retSample is one side's retention: its time and the AWS calls it made.
type retSample struct {
	name               string
	start              time.Time
	wall               time.Duration
	retired, decisions int
	calls              int
	// firstRetire is when the first DeregisterImage arrived: the end of
	// listing, give or take the planning.
	firstRetire time.Duration
	counts      string
}

// analyse counts the calls made since the side started; the proxy saw
// nothing else then.
func (s *retSample) analyse(reqs []awsproxy.Request) {
	s.calls, s.counts = len(reqs), callCounts(reqs)
	for _, q := range reqs {
		if q.Action == "DeregisterImage" {
			s.firstRetire = q.Time.Sub(s.start)
			break
		}
	}
}

func (s *retSample) log(b *testing.B) {
	b.Logf("%s: %.2fs, %d AWS calls (%.1f/s, %.1f per place), first DeregisterImage at +%.2fs | %s",
		s.name, s.wall.Seconds(), s.calls, float64(s.calls)/s.wall.Seconds(),
		float64(s.calls)/float64(len(retAccounts)*len(distRegions)), s.firstRetire.Seconds(), s.counts)
}

func (s *retSample) add(o retSample) {
	s.wall += o.wall
	s.calls += o.calls
}
