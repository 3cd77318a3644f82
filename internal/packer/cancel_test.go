package packer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestBuildCancel: cancelling mid-provisioning interrupts packer's process
// group; packer terminates its instance and deletes its key pair, and Build
// returns at once rather than after the sleep.
func TestBuildCancel(t *testing.T) {
	rec := &recorder{}
	o := hclOptions(t, rec, "sleep 60")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Progress = func(p Progress) {
		rec.onProgress(p)
		if strings.Contains(p.Step, "Running local shell script") {
			cancel()
		}
	}
	start := time.Now()
	res, err := Build(ctx, o)
	took := time.Since(start)
	t.Logf("cancelled build returned after %v", took)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled; packer cleaned up") || res != nil {
		t.Fatalf("Build = %v, %v; want cancelled and cleaned up\nlog:\n%s", res, err, rec.log.String())
	}
	if took > 15*time.Second {
		t.Errorf("took %v: packer was not interrupted", took)
	}
	checkCleanedUp(t, rec.log.String())
}

// checkCleanedUp asserts moto has the build's instance terminated and no
// temporary key pair left.
func checkCleanedUp(t *testing.T, log string) {
	t.Helper()
	m := regexp.MustCompile(`Instance ID: (i-[0-9a-f]+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no instance in log:\n%s", log)
	}
	c := ec2Client(moto(t), "us-east-1")
	inst, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{m[1]}})
	if err != nil || len(inst.Reservations) != 1 {
		t.Fatalf("DescribeInstances %s: %v", m[1], err)
	}
	if st := inst.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameTerminated {
		t.Errorf("instance %s is %s, want terminated", m[1], st)
	}
	keys, err := c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.KeyPairs {
		if strings.HasPrefix(aws.ToString(k.KeyName), "packer_") {
			t.Errorf("key pair %s left behind", aws.ToString(k.KeyName))
		}
	}
}

// TestBuildKillAfterGrace: a packer that ignores SIGINT is killed with its
// whole group once KillGrace has passed.
func TestBuildKillAfterGrace(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "packer")
	script := "#!/bin/sh\ntrap '' INT\nsleep 60 &\necho $! > child.pid\necho '1,,ui,say,==> fake: started'\nwait\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.pkr.hcl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	const grace = 300 * time.Millisecond
	o := Options{Dir: dir, Template: "t.pkr.hcl", Packer: fake, KillGrace: grace,
		Progress: func(Progress) { cancel() }}
	start := time.Now()
	_, err := Build(ctx, o)
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "killed after grace") {
		t.Fatalf("err = %v", err)
	}
	if took < grace || took > grace+5*time.Second {
		t.Errorf("took %v with a %v grace", took, grace)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "child.pid"))
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &pid); err != nil {
		t.Fatalf("child.pid = %q: the fake never started its child", data)
	}
	// SIGKILL is delivered asynchronously; on a loaded machine the child may
	// take a moment to die after Build returns.
	for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("packer's child %d survived the group kill", pid)
	}
}

// alive reports whether pid is a live process (not a zombie awaiting reaping).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}
