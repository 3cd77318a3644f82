package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/test/awsproxy"
)

// motoAt is moto straight, not through the proxy, so set-up and checks stay
// out of the proxy's record. moto acts in the account the x-moto-account-id
// header names.
type motoAt struct{ url string }

func (m motoAt) config(account, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(m.url),
		HTTPClient:   &http.Client{Transport: accountHeader{account: account, next: http.DefaultTransport}},
	}
}

func (m motoAt) ec2(account, region string) *ec2.Client {
	return ec2.NewFromConfig(m.config(account, region))
}

func (m motoAt) kms(account, region string) *kms.Client {
	return kms.NewFromConfig(m.config(account, region))
}

// accountHeader sets moto's account header on every request; moto checks no
// signature, so adding it after signing is harmless.
type accountHeader struct {
	account string
	next    http.RoundTripper
}

func (t accountHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("x-moto-account-id", t.account)
	return t.next.RoundTrip(r)
}

// prepareTargets gives every target account and region the KMS key its
// copies are encrypted with, and makes moto create its EC2 backend there
// now: moto builds one lazily on first use (loading its default AMIs), a
// cold start real EC2 does not have and the benchmark must not time.
func prepareTargets(ctx context.Context, m motoAt) error {
	type target struct{ account, region string }
	work := make(chan target)
	errs := make(chan error, len(distAccounts)*len(distRegions))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for t := range work {
				if err := prepareTarget(ctx, m, t.account, t.region); err != nil {
					errs <- fmt.Errorf("%s/%s: %w", t.account, t.region, err)
				}
			}
		})
	}
	for _, account := range distAccounts {
		for _, region := range distRegions {
			work <- target{account, region}
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

func prepareTarget(ctx context.Context, m motoAt, account, region string) error {
	k := m.kms(account, region)
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln bench AMI key")})
	if err != nil {
		return err
	}
	_, err = k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(distKMSAlias), TargetKeyId: key.KeyMetadata.KeyId})
	if err != nil {
		return err
	}
	_, err = m.ec2(account, region).DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	return err
}

// makeSource registers a fresh source AMI in the bake region of moto's
// default account, backed by one EBS snapshot as a baked AMI is, and tagged
// as a tested AMI of the pipeline at commit, so the bake stage reuses it.
func makeSource(ctx context.Context, m motoAt, commit string) (string, error) {
	c := m.ec2(awsproxy.DefaultAccount, distSourceRegion)
	vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(distSourceRegion + "a"), Size: aws.Int32(8)})
	if err != nil {
		return "", err
	}
	snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		return "", err
	}
	img, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               aws.String(fmt.Sprintf("kiln-bench-%d", time.Now().UnixNano())),
		Architecture:       ec2types.ArchitectureValuesX8664,
		VirtualizationType: aws.String("hvm"),
		RootDeviceName:     aws.String("/dev/xvda"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: snap.SnapshotId, VolumeSize: aws.Int32(8)},
		}},
	})
	if err != nil {
		return "", err
	}
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{aws.ToString(img.ImageId), aws.ToString(snap.SnapshotId)},
		Tags: []ec2types.Tag{
			{Key: aws.String(activities.TagPipeline), Value: aws.String(distPipeline)},
			{Key: aws.String(activities.TagCommit), Value: aws.String(commit)},
			{Key: aws.String(activities.TagTest), Value: aws.String("passed")},
		},
	})
	return aws.ToString(img.ImageId), err
}

// checkCopy fails unless ami is an available image in the account and
// region, marked as a copy of source.
func checkCopy(ctx context.Context, m motoAt, account, region, ami, source string) error {
	out, err := m.ec2(account, region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return err
	}
	if len(out.Images) != 1 {
		return fmt.Errorf("%s is not in %s/%s", ami, account, region)
	}
	im := out.Images[0]
	if im.State != ec2types.ImageStateAvailable {
		return fmt.Errorf("%s in %s/%s is %s", ami, account, region, im.State)
	}
	for _, t := range im.Tags {
		if aws.ToString(t.Key) == activities.TagSource && aws.ToString(t.Value) == source {
			return nil
		}
	}
	return fmt.Errorf("%s in %s/%s has no %s=%s tag", ami, account, region, activities.TagSource, source)
}

// idleLatency is the median of a few DescribeImages of ami, one at a time,
// through the proxy: what a call costs when moto is not busy.
func idleLatency(ctx context.Context, proxyURL, ami string) (time.Duration, error) {
	c := motoAt{url: proxyURL}.ec2(awsproxy.DefaultAccount, distSourceRegion)
	var l latencies
	for range 10 {
		t0 := time.Now()
		if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}); err != nil {
			return 0, err
		}
		l.add(time.Since(t0))
	}
	return time.Duration(l.pct(0.5) * float64(time.Millisecond)), nil
}

// timedCall is one AWS call as the worker saw it: from request to answer,
// through the proxy and moto.
type timedCall struct {
	action     string
	start, end time.Time
}

// timer sits in front of the proxy and records how long each call took;
// the proxy records only when a call arrived.
type timer struct {
	next  http.Handler
	mu    sync.Mutex
	calls []timedCall
}

func (t *timer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	action := r.Header.Get("X-Amz-Target")
	if action != "" {
		action = action[strings.LastIndex(action, ".")+1:]
	} else if q, err := url.ParseQuery(string(body)); err == nil {
		action = q.Get("Action")
	}
	start := time.Now()
	t.next.ServeHTTP(w, r)
	t.mu.Lock()
	t.calls = append(t.calls, timedCall{action: action, start: start, end: time.Now()})
	t.mu.Unlock()
}

// latencies returns the durations of the calls that started within
// [from, to], by action, plus "" for all of them.
func (t *timer) latencies(from, to time.Time) map[string]*latencies {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]*latencies{"": {}}
	for _, c := range t.calls {
		if c.start.Before(from) || c.start.After(to) {
			continue
		}
		if out[c.action] == nil {
			out[c.action] = &latencies{}
		}
		out[c.action].add(c.end.Sub(c.start))
		out[""].add(c.end.Sub(c.start))
	}
	return out
}

// dispatch reads from the run's history when each CopyAMI activity was
// scheduled and started: how fast Temporal and the worker took them up.
func (s *distSample) dispatch(ctx context.Context, c client.Client, id string) error {
	scheduled := map[int64]time.Time{}
	target := map[int64]string{} // scheduled event → account/region
	iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return err
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "CopyAMI" {
			scheduled[ev.GetEventId()] = ev.GetEventTime().AsTime()
			var in activities.CopyInput
			if p := a.GetInput().GetPayloads(); len(p) == 1 && json.Unmarshal(p[0].GetData(), &in) == nil {
				target[ev.GetEventId()] = in.Account + "/" + in.Region
			}
		}
		// A started event is written when its activity closes, with the
		// time the last attempt started.
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			if at, ok := scheduled[a.GetScheduledEventId()]; ok {
				started := ev.GetEventTime().AsTime()
				s.lastStarted = max(s.lastStarted, started.Sub(s.start))
				s.queued = max(s.queued, started.Sub(at))
				s.retried += int(a.GetAttempt()) - 1
				s.started[target[a.GetScheduledEventId()]] = started
			}
		}
	}
	return nil
}

// callCounts counts requests by action, busiest first, as "Action=N".
func callCounts(reqs []awsproxy.Request) string {
	n := map[string]int{}
	for _, r := range reqs {
		n[r.Action]++
	}
	actions := make([]string, 0, len(n))
	for a := range n {
		actions = append(actions, a)
	}
	slices.SortFunc(actions, func(a, b string) int { return n[b] - n[a] })
	parts := make([]string, len(actions))
	for i, a := range actions {
		parts[i] = fmt.Sprintf("%s=%d", a, n[a])
	}
	return strings.Join(parts, " ")
}
