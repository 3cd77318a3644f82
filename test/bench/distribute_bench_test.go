package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// The distribution benchmarked: 3 accounts × 16 regions, each an encrypted
// copy made through the account's role.
var (
	distAccounts = []string{"222222222222", "333333333333", "444444444444"}
	distRegions  = []string{
		"us-east-1", "us-east-2", "us-west-1", "us-west-2",
		"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
		"ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2",
		"ca-central-1", "sa-east-1",
	}
)

const (
	distPipeline     = "dist48"
	distSourceRegion = "us-east-1"
	distKMSAlias     = "alias/kiln-ami"
	// distPoll is the worker's CopyPollInterval: fine enough that polling
	// adds little to D.
	distPoll = 250 * time.Millisecond
	// distRunTimeout bounds one run; it is a hang guard, not a measure.
	distRunTimeout = 10 * time.Minute
)

// BenchmarkDistribute48 distributes one AMI to 48 targets while the proxy
// keeps every copy pending for D, and reports the distribute stage's wall
// time against D, the physical limit (goal: wall/D ≤ 1.1), and against a
// sequential loop's 48 × D. Run it alone; it starts moto and Temporal:
//
//	go test ./test/bench -run '^$' -bench Distribute48 -benchtime 1x -timeout 20m
func BenchmarkDistribute48(b *testing.B) {
	r := newDistRig(b)
	for _, d := range []time.Duration{5 * time.Second, 30 * time.Second} {
		b.Run(fmt.Sprintf("D=%s", d), func(b *testing.B) { r.bench(b, d) })
	}
}

// distRig is what every sub-benchmark shares: moto, Temporal, a kiln worker
// and the repository the pipeline builds.
type distRig struct {
	moto *motoserver.Server
	tmp  *testkit.Temporal
	runs *starter.Runs
	head string
}

func newDistRig(b *testing.B) *distRig {
	b.Helper()
	ctx := context.Background()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		b.Setenv(k, v) // the SDK reads them on every activity
	}
	r := &distRig{moto: motoserver.Start(b)}
	repo := filepath.Join(b.TempDir(), "repo")
	head, err := gitx.InitRepo(ctx, repo, fstest.MapFS{"ami.pkr.hcl": {Data: []byte("# never built\n")}}, "initial commit")
	if err != nil {
		b.Fatal(err)
	}
	r.head = head
	cfg, err := config.Parse("kiln.yaml", []byte(distConfig(repo)))
	if err != nil {
		b.Fatal(err)
	}
	if r.tmp, err = testkit.StartTemporal(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.tmp.Close)
	// /bin/false as packer: a bake that runs packer fails the run.
	w := worker.New(r.tmp.Client, worker.Options{
		Config: cfg, DataDir: b.TempDir(), PackerBinary: "/bin/false",
		CopyPollInterval: distPoll, Log: zerolog.Nop(),
	})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	r.runs = &starter.Runs{Client: r.tmp.Client}
	return r
}

// distConfig is kiln.yaml: one manual pipeline that bakes in us-east-1 (a
// reuse, here) and copies to every account and region.
func distConfig(repo string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "repos:\n  - name: bench/ami\n    clone_url: %q\n    webhook_secret: {env: UNUSED}\n", repo)
	fmt.Fprintf(&s, "pipelines:\n  - name: %s\n    repo: bench/ami\n    triggers: {manual: true}\n    stages:\n", distPipeline)
	fmt.Fprintf(&s, "      bake: {template: ami.pkr.hcl, region: %s}\n      distribute:\n        targets:\n", distSourceRegion)
	for _, account := range distAccounts {
		fmt.Fprintf(&s, "          - account: %q\n            role: arn:aws:iam::%s:role/kiln-distribute\n", account, account)
		s.WriteString("            mode: copy\n            regions:\n")
		for _, region := range distRegions {
			fmt.Fprintf(&s, "              - {region: %s, kms_key: %s}\n", region, distKMSAlias)
		}
	}
	return s.String()
}

// bench runs b.N distributions with copies pending for d, each from a fresh
// source AMI in a freshly reset moto: a second distribution of the same AMI
// would find the first one's copies and copy nothing.
func (r *distRig) bench(b *testing.B, d time.Duration) {
	p := awsproxy.Start(b, r.moto.URL)
	p.ShareAcrossAccounts()
	p.PendingFor(d)
	t := &timer{next: p}
	srv := httptest.NewServer(t)
	b.Cleanup(srv.Close)
	b.Setenv("AWS_ENDPOINT_URL", srv.URL)
	var total distSample
	for range b.N {
		b.StopTimer()
		src := r.seed(b)
		idle, err := idleLatency(context.Background(), srv.URL, src)
		if err != nil {
			b.Fatal(err)
		}
		from := len(p.Requests())
		b.StartTimer()
		s := r.distribute(b, src)
		b.StopTimer()
		s.idle = idle
		s.analyse(p.Requests()[from:], t, d)
		s.log(b, d)
		total.add(s)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op") // the run's whole time; wall-s is the stage's
	b.ReportMetric(total.wall.Seconds()/n, "wall-s")
	b.ReportMetric(total.wall.Seconds()/n/d.Seconds(), "wall/D")
	b.ReportMetric(float64(len(distAccounts)*len(distRegions))*d.Seconds(), "seq-48xD-s")
	b.ReportMetric(float64(total.copies)/n, "CopyImage/op")
	b.ReportMetric(float64(total.describes)/n, "DescribeImages/op")
	b.ReportMetric(float64(total.calls)/n, "aws-calls/op")
	b.ReportMetric(total.lastCopy.Seconds()/n, "last-copy-s")
}

// seed resets moto and makes what a run needs: target keys and a fresh
// source AMI, which it returns.
func (r *distRig) seed(b *testing.B) string {
	b.Helper()
	if err := r.moto.Reset(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := motoAt{url: r.moto.URL}
	if err := prepareTargets(ctx, m); err != nil {
		b.Fatalf("prepare targets: %v", err)
	}
	src, err := makeSource(ctx, m, r.head)
	if err != nil {
		b.Fatalf("source AMI: %v", err)
	}
	return src
}

// distribute runs the pipeline at main, checks that it reused src and
// copied it to every target, and returns the distribute stage's timing.
func (r *distRig) distribute(b *testing.B, src string) *distSample {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), distRunTimeout)
	defer cancel()
	id, err := r.runs.Start(ctx, starter.ManualRun{Pipeline: distPipeline, Ref: "main"})
	if err != nil {
		b.Fatal(err)
	}
	var res workflows.PipelineResult
	if err := r.tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		b.Fatalf("run %s: %v", id, err)
	}
	if res.Bake == nil || !res.Bake.Reused || res.Bake.AMI() != src {
		b.Fatalf("run %s did not reuse the source AMI %s: %+v", id, src, res.Bake)
	}
	v, err := r.tmp.Client.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	var prog workflows.Progress
	if err == nil {
		err = v.Get(&prog)
	}
	if err != nil {
		b.Fatalf("progress of %s: %v", id, err)
	}
	s := &distSample{amis: res.Distribution.AMIs, started: map[string]time.Time{}}
	for _, st := range prog.Stages {
		if st.Name == workflows.StageDistribute {
			s.start, s.end, s.wall = st.Start, st.End, st.End.Sub(st.Start)
		}
	}
	if s.wall <= 0 {
		b.Fatalf("run %s: no distribute stage timing in %+v", id, prog.Stages)
	}
	if err := s.dispatch(ctx, r.tmp.Client, id); err != nil {
		b.Fatalf("history of %s: %v", id, err)
	}
	m := motoAt{url: r.moto.URL}
	for _, account := range distAccounts {
		for _, region := range distRegions {
			if err := checkCopy(ctx, m, account, region, s.amis[account][region], src); err != nil {
				b.Fatalf("run %s: %v", id, err)
			}
		}
	}
	return s
}

// distSample is one distribution's timing and AWS calls, from the progress
// query and the proxy's record.
type distSample struct {
	amis       workflows.AMIMap
	start, end time.Time
	wall       time.Duration
	// calls, copies and describes count the AWS calls within the stage.
	calls, copies, describes int
	// firstCopy and lastCopy are when the first and last CopyImage arrived,
	// after the stage started; lastDone is when the last copy's final
	// CreateTags arrived; overshoot is the most any copy took past D from
	// its CopyImage to that CreateTags.
	firstCopy, lastCopy, lastDone, overshoot time.Duration
	// lastStarted is when the last CopyAMI activity started, after the
	// stage started; queued is the longest one waited for a worker; retried
	// counts attempts after the first.
	lastStarted, queued time.Duration
	retried             int
	// started maps account/region to when its CopyAMI started; inActivity
	// is the median and longest time from there to its CopyImage.
	started                  map[string]time.Time
	inActivity50, inActivity time.Duration
	counts, latency          string
	// idle is a DescribeImages' latency before the run, with moto idle.
	idle time.Duration
}

// analyse attributes the stage's AWS calls to its phases.
func (s *distSample) analyse(reqs []awsproxy.Request, t *timer, d time.Duration) {
	var inStage []awsproxy.Request
	copied := map[string]time.Time{} // account/region → CopyImage
	done := map[string]time.Time{}   // AMI → last CreateTags
	for _, q := range reqs {
		if q.Time.Before(s.start) || q.Time.After(s.end) {
			continue
		}
		inStage = append(inStage, q)
		switch q.Action {
		case "CopyImage":
			s.copies++
			copied[q.Account+"/"+q.Region] = q.Time
		case "DescribeImages":
			s.describes++
		case "CreateTags":
			done[q.Params.Get("ResourceId.1")] = q.Time
		}
	}
	s.calls, s.counts = len(inStage), callCounts(inStage)
	s.firstCopy = time.Duration(1<<63 - 1)
	var pre latencies
	for key, at := range copied {
		pre.add(at.Sub(s.started[key]))
		account, region, _ := strings.Cut(key, "/")
		s.firstCopy = min(s.firstCopy, at.Sub(s.start))
		s.lastCopy = max(s.lastCopy, at.Sub(s.start))
		fin := done[s.amis[account][region]]
		s.lastDone = max(s.lastDone, fin.Sub(s.start))
		s.overshoot = max(s.overshoot, fin.Sub(at)-d)
	}
	s.inActivity50 = time.Duration(pre.pct(0.5) * float64(time.Millisecond))
	s.inActivity = time.Duration(pre.pct(1) * float64(time.Millisecond))
	var b strings.Builder
	lat := t.latencies(s.start, s.end)
	for _, a := range []string{"", "DescribeImages", "CopyImage", "AssumeRole", "DescribeKey", "ModifyImageAttribute"} {
		if l := lat[a]; l != nil {
			fmt.Fprintf(&b, " %s p50=%.0fms p99=%.0fms;", orAll(a), l.pct(0.5), l.pct(0.99))
		}
	}
	s.latency = b.String()
}

func (s *distSample) log(b *testing.B, d time.Duration) {
	b.Logf("D=%s wall=%.2fs wall/D=%.3f | first CopyImage at +%.2fs, last at +%.2fs; last copy done at +%.2fs; "+
		"worst copy took D+%.2fs; stage ended %.2fs after the last copy",
		d, s.wall.Seconds(), s.wall.Seconds()/d.Seconds(), s.firstCopy.Seconds(), s.lastCopy.Seconds(),
		s.lastDone.Seconds(), s.overshoot.Seconds(), (s.wall - s.lastDone).Seconds())
	b.Logf("CopyAMI activities: last started at +%.2fs, longest wait for a worker %.2fs, %d retried attempts; "+
		"from start to CopyImage p50 %.2fs, max %.2fs",
		s.lastStarted.Seconds(), s.queued.Seconds(), s.retried, s.inActivity50.Seconds(), s.inActivity.Seconds())
	b.Logf("calls in stage: %s", s.counts)
	b.Logf("latency through proxy and moto: idle DescribeImages %.0fms; during the stage:%s",
		float64(s.idle.Microseconds())/1000, s.latency)
}

func (s *distSample) add(o *distSample) {
	s.wall += o.wall
	s.calls += o.calls
	s.copies += o.copies
	s.describes += o.describes
	s.lastCopy += o.lastCopy
}

// orAll names the latency bucket of every action.
func orAll(action string) string {
	if action == "" {
		return "all"
	}
	return action
}
