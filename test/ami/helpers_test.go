package ami

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// runTimeout bounds one run. A bake against moto takes about a second, but a
// run may wait for a 10 s activity retry and SDK backoff (the resume test),
// on a busy two-core machine.
const runTimeout = 90 * time.Second

// run starts a manual run of main and waits for it, returning its workflow
// ID, its result and the workflow's error.
func run(t *testing.T, m starter.ManualRun) (string, *workflows.PipelineResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	m.Ref = "main"
	id, err := it.runs.Start(ctx, m)
	require.NoError(t, err)
	var res workflows.PipelineResult
	err = it.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res)
	require.NoError(t, ctx.Err(), "run %s did not finish within %s", id, runTimeout)
	return id, &res, err
}

// mustRun is run for a run that must complete and bake (or reuse) an AMI.
func mustRun(t *testing.T, m starter.ManualRun) (string, *workflows.PipelineResult) {
	t.Helper()
	id, res, err := run(t, m)
	require.NoError(t, err, "run %s", id)
	require.NotNil(t, res.Bake, "run %s has no bake result", id)
	return id, res
}

// packerRuns counts the packer invocations for runs whose ID starts with
// prefix (a run ID, or "pipeline/").
func packerRuns(t *testing.T, prefix string) int {
	t.Helper()
	data, err := os.ReadFile(it.packerLog)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// ec2At is an EC2 client straight at moto, so the tests' own checks stay out
// of the proxy's record.
func ec2At(region string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(it.moto.URL),
	})
}

// image describes one AMI in region.
func image(t *testing.T, region, ami string) ec2types.Image {
	t.Helper()
	out, err := ec2At(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1, "%s in %s", ami, region)
	return out.Images[0]
}

// snapshotTags returns the tags of each snapshot behind an AMI, by snapshot ID.
func snapshotTags(t *testing.T, region string, img ec2types.Image) map[string]map[string]string {
	t.Helper()
	var ids []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	require.NotEmpty(t, ids, "%s in %s has no EBS snapshot", aws.ToString(img.ImageId), region)
	out, err := ec2At(region).DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	require.NoError(t, err)
	require.Len(t, out.Snapshots, len(ids))
	tags := map[string]map[string]string{}
	for _, s := range out.Snapshots {
		tags[aws.ToString(s.SnapshotId)] = tagMap(s.Tags)
	}
	return tags
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, tag := range tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

// history returns every event of a run's history.
func history(t *testing.T, id string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := testkit.History(ctx, it.temporal, id)
	require.NoError(t, err)
	return events
}

// bakeAttempts returns the attempt of each ActivityTaskStarted event of the
// Bake activity.
func bakeAttempts(events []*historypb.HistoryEvent) []int32 {
	return testkit.ActivityAttempts(events, "Bake")
}

// bakeLog is where the worker writes a bake attempt's log: the workflow ID
// with "/" made "_", as activities.Paths documents for builds.
func bakeLog(id string, attempt int) string {
	run := strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(id)
	return filepath.Join(it.dataDir, "logs", run, "bake-"+strconv.Itoa(attempt)+".log")
}

// eachText calls fn with every string and bytes field anywhere in m, so a
// value inside a payload's (binary) data is seen as text.
func eachText(m protoreflect.Message, fn func(string)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				eachValue(fd, l.Get(i), fn)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				fn(k.String())
				eachValue(fd.MapValue(), mv, fn)
				return true
			})
		default:
			eachValue(fd, v, fn)
		}
		return true
	})
}

func eachValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, fn func(string)) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		fn(v.String())
	case protoreflect.BytesKind:
		fn(string(v.Bytes()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		eachText(v.Message(), fn)
	}
}

// tagsWith reports whether a CreateTags request sets the tag key to value,
// so a fault can target one test's tagging among the parallel tests'.
func tagsWith(r awsproxy.Request, key, value string) bool {
	for i := 1; r.Params.Has(fmt.Sprintf("Tag.%d.Key", i)); i++ {
		if r.Params.Get(fmt.Sprintf("Tag.%d.Key", i)) == key && r.Params.Get(fmt.Sprintf("Tag.%d.Value", i)) == value {
			return true
		}
	}
	return false
}
