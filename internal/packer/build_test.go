package packer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// recorder keeps everything a build showed the outside world.
type recorder struct {
	mu       sync.Mutex
	log      bytes.Buffer
	progress []Progress
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}

func (r *recorder) onProgress(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
}

// hclOptions builds the HCL2 template against moto with the given script.
func hclOptions(t *testing.T, rec *recorder, script string) Options {
	url := moto(t)
	return Options{
		Dir:       workdir(t, "hcl"),
		Template:  "ami.pkr.hcl",
		Vars:      map[string]string{"endpoint": url, "name": amiName(t), "script": script},
		Env:       []string{"PKR_VAR_kiln_commit=0123abc"},
		Log:       rec,
		Progress:  rec.onProgress,
		KillGrace: 30 * time.Second,
	}
}

// checkAMIs proves each artifact exists in moto in its region and carries
// the commit tag kiln passed through the environment.
func checkAMIs(t *testing.T, arts []Artifact) map[string]string {
	t.Helper()
	wantRegions := []string{"us-east-1", "us-west-2"}
	if len(arts) != 2 || arts[0].Region != wantRegions[0] || arts[1].Region != wantRegions[1] {
		t.Fatalf("artifacts = %v, want one AMI in each of %v", arts, wantRegions)
	}
	var tags map[string]string
	for _, a := range arts {
		out, err := ec2Client(moto(t), a.Region).DescribeImages(context.Background(),
			&ec2.DescribeImagesInput{ImageIds: []string{a.AMI}})
		if err != nil || len(out.Images) != 1 {
			t.Fatalf("DescribeImages %s in %s: %v (%d images)", a.AMI, a.Region, err, len(out.Images))
		}
		tags = map[string]string{}
		for _, tag := range out.Images[0].Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if tags["kiln:commit"] != "0123abc" {
			t.Errorf("%s tags = %v, want kiln:commit=0123abc from PKR_VAR_kiln_commit", a.AMI, tags)
		}
	}
	return tags
}

// TestBuildHCL: an HCL2 template yields the source-region AMI and its copy,
// both real in moto and tagged from PKR_VAR_kiln_commit; the log is human.
func TestBuildHCL(t *testing.T) {
	rec := &recorder{}
	start := time.Now()
	res, err := Build(context.Background(), hclOptions(t, rec, "echo provisioning"))
	t.Logf("build took %v", time.Since(start))
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, rec.log.String())
	}
	checkAMIs(t, res.Artifacts)
	log := rec.log.String()
	if !strings.Contains(log, "amazon-ebs.main: provisioning") || strings.Contains(log, ",ui,") {
		t.Errorf("log is not the human UI text:\n%s", log)
	}
	if strings.Contains(log, "PACKER_COMMA") || !strings.Contains(log, "No volumes to clean up, skipping") {
		t.Errorf("log keeps packer's escapes:\n%s", log)
	}
	if len(rec.progress) == 0 || rec.progress[len(rec.progress)-1].Step == "" {
		t.Errorf("progress = %v, want steps", rec.progress)
	}
}

// TestBuildJSONManifest: a legacy JSON template with a manifest
// post-processor, built twice into the same manifest, returns only this run's
// AMIs, each once, and the run's UUID. The second build gets a variable from
// the secret var file.
func TestBuildJSONManifest(t *testing.T) {
	dir := workdir(t, "json")
	var first *Result
	for i := range 2 {
		o := Options{
			Dir: dir, Template: "ami.json", Manifest: "manifest.json",
			Vars: map[string]string{"endpoint": moto(t), "name": fmt.Sprintf("%s-%d", amiName(t), i)},
			Env:  []string{"PKR_VAR_kiln_commit=0123abc"},
		}
		if i == 1 {
			// A JSON template reads secret variables from the var file too:
			// without the endpoint packer would call real AWS and fail.
			o.SecretVars = map[string]string{"endpoint": o.Vars["endpoint"]}
			delete(o.Vars, "endpoint")
		}
		res, err := Build(context.Background(), o)
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		checkAMIs(t, res.Artifacts)
		if res.RunUUID == "" {
			t.Errorf("build %d: no RunUUID", i)
		}
		if first != nil && (res.RunUUID == first.RunUUID || res.Artifacts[0] == first.Artifacts[0]) {
			t.Errorf("second build returned the first one's run: %+v vs %+v", res, first)
		}
		first = res
	}
}

// TestBuildFailure: a failing provisioner is a BuildError with packer's exit
// code, its error line and the log's tail.
func TestBuildFailure(t *testing.T) {
	rec := &recorder{}
	res, err := Build(context.Background(), hclOptions(t, rec, "exit 7"))
	var be *BuildError
	if !errors.As(err, &be) || res != nil {
		t.Fatalf("Build = %v, %v; want *BuildError", res, err)
	}
	if be.ExitCode != 1 || len(be.Errors) != 1 || !strings.Contains(be.Errors[0], "non-zero exit status: 7") {
		t.Errorf("BuildError = %+v", be)
	}
	if !strings.Contains(err.Error(), "exit code 1") || !strings.Contains(err.Error(), "amazon-ebs.main: Script exited") {
		t.Errorf("message = %q", err)
	}
	if len(be.LogTail) == 0 || !strings.Contains(strings.Join(be.LogTail, "\n"), "Deleting temporary keypair") {
		t.Errorf("LogTail = %q", be.LogTail)
	}
}

// TestBuildTemplateError: a template packer rejects (undeclared -var) fails
// with packer's own ui error, since no build ran to report one.
func TestBuildTemplateError(t *testing.T) {
	o := hclOptions(t, &recorder{}, "true")
	o.Vars["undeclared"] = "x"
	_, err := Build(context.Background(), o)
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), `"undeclared" variable was passed`) {
		t.Fatalf("err = %v", err)
	}
}
