package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/datasource/ami"
	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

// benchWith and benchWithout are one null-source bake, with and without
// data "kiln-ami": the same variables, source and provisioner, writing the
// data source's answer or a constant.
const (
	benchVars = `variable "endpoint" {
  type = string
}

variable "out" {
  type = string
}

source "null" "app" {
  communicator = "none"
}
`
	benchWith = benchVars + `
data "kiln-ami" "base" {
  pipeline = "base"
  ref      = "main"
  region   = "us-east-1"
  endpoint = var.endpoint
}

build {
  sources = ["source.null.app"]

  provisioner "shell-local" {
    inline = ["echo ${data.kiln-ami.base.id} > ${var.out}"]
  }
}
`
	benchWithout = benchVars + `
build {
  sources = ["source.null.app"]

  provisioner "shell-local" {
    inline = ["echo ami-constant > ${var.out}"]
  }
}
`
)

// BenchmarkKilnAMIInBake runs Packer 1.9.4's build of a null source twice
// an iteration, alternating which goes first: with data "kiln-ami" looking
// up the newest passed AMI of base at main (among 30 AMIs of 3 pipelines,
// in moto), and without it. Both run with the plugin installed as kiln
// installs it, so what differs is the data source alone: Packer starting
// the plugin for it, Configure, and Execute's AWS config and lookup. It
// reports the median wall time of each build, the difference and the ratio,
// and, to split the difference, the median of the same lookup made in this
// process (ami.Find on a warm client) once an iteration, off the clock.
//
//	go test . -run '^$' -bench KilnAMIInBake -benchtime 20x -count 3 -timeout 30m
func BenchmarkKilnAMIInBake(b *testing.B) {
	packer := os.Getenv("KILN_PACKER_1_9")
	if packer == "" {
		home, _ := os.UserHomeDir()
		packer = filepath.Join(home, ".cache", "kiln-ci", "packer-v1.9.4", "packer")
	}
	if _, err := os.Stat(packer); err != nil {
		b.Skipf("Packer 1.9 not at %s (set KILN_PACKER_1_9 to its path): %v", packer, err)
	}
	moto, err := mototest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer moto.Stop()
	want := seedBake(b, moto)

	dir := b.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(plugins, "packer-plugin-kiln"), ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"PACKER_PLUGIN_PATH="+plugins,
		"PACKER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"PACKER_CACHE_DIR="+filepath.Join(dir, "cache"),
		"CHECKPOINT_DISABLE=1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
	type bake struct{ name, template, want string }
	bakes := []bake{{"with", filepath.Join(dir, "with.pkr.hcl"), want}, {"without", filepath.Join(dir, "without.pkr.hcl"), "ami-constant"}}
	for i, text := range []string{benchWith, benchWithout} {
		if err := os.WriteFile(bakes[i].template, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	build := func(k bake) time.Duration {
		_ = os.Remove(out)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, packer, "build", "-var", "endpoint="+moto.URL, "-var", "out="+out, k.template)
		cmd.Env = env
		t0 := time.Now()
		log, err := cmd.CombinedOutput()
		took := time.Since(t0)
		if err != nil {
			b.Fatalf("packer build %s: %v\n%s", k.name, err, log)
		}
		if got, err := os.ReadFile(out); err != nil || strings.TrimSpace(string(got)) != k.want {
			b.Fatalf("packer build %s wrote %q (%v), want %s\n%s", k.name, got, err, k.want, log)
		}
		return took
	}
	c := moto.EC2("us-east-1")
	find := func() time.Duration {
		t0 := time.Now()
		got, err := ami.Find(context.Background(), c, ami.Query{Pipeline: "base", Ref: "main", Region: "us-east-1"})
		took := time.Since(t0)
		if err != nil || got.ID != want {
			b.Fatalf("Find: %+v, %v; want %s", got, err, want)
		}
		return took
	}
	build(bakes[0]) // Packer's first run writes its config and checks the plugin
	build(bakes[1])
	find()
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		order := bakes
		if i%2 == 1 {
			order = []bake{bakes[1], bakes[0]}
		}
		for _, k := range order {
			times[k.name] = append(times[k.name], build(k))
		}
		b.StopTimer()
		times["find"] = append(times["find"], find())
		b.StartTimer()
	}
	b.StopTimer()
	with, without := medianMS(times["with"]), medianMS(times["without"])
	b.ReportMetric(0, "ns/op") // the sum of both; their own figures follow
	b.ReportMetric(with, "with-ms")
	b.ReportMetric(without, "without-ms")
	b.ReportMetric(with-without, "with-without-ms")
	b.ReportMetric(with/without, "with/without")
	b.ReportMetric(medianMS(times["find"]), "find-ms")
}

// seedBake registers 30 AMIs in us-east-1, 5 a second of 3 pipelines at 2
// refs, and returns the newest passed AMI of base at main.
func seedBake(b *testing.B, moto *mototest.Server) string {
	b.Helper()
	c := moto.EC2("us-east-1")
	var want string
	for n := range 5 {
		for _, p := range []string{"base", "app", "web"} {
			for _, ref := range []string{"refs/heads/main", "refs/heads/dev"} {
				commit := fmt.Sprintf("c%d", n)
				outcome := "passed"
				if n == 4 {
					outcome = "failed" // the newest failed: the lookup must pass over it
				}
				id := mototest.Image(b, c, fmt.Sprintf("%s-%s-%s", p, commit, strings.ReplaceAll(ref, "/", "-")), map[string]string{
					"kiln:pipeline": p, "kiln:ref": ref, "kiln:commit": commit, "kiln:run": p + "/main/" + commit, "kiln:test": outcome,
				})
				if p == "base" && ref == "refs/heads/main" && outcome == "passed" {
					want = id
				}
			}
		}
		time.Sleep(1100 * time.Millisecond) // creation dates are to the second
	}
	return want
}

// medianMS is the median of ds in ms.
func medianMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}
