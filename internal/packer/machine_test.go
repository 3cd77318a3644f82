package packer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ci/kiln/internal/scrub"
)

// TestParseRecord: fields split on raw commas only; escaped commas and \n
// come back as the characters packer escaped.
func TestParseRecord(t *testing.T) {
	r, ok := parseRecord(`1795326791,,ui,say,\n==> Builds finished%!(PACKER_COMMA) ok` + "\r\n")
	if !ok || r.Target != "" || r.Type != "ui" || !reflect.DeepEqual(r.Data, []string{"say", "\n==> Builds finished, ok"}) {
		t.Errorf("parseRecord = %+v, %v", r, ok)
	}
	for _, bad := range []string{"", "plain text", "abc,,ui,say,x", "12,x"} {
		if _, ok := parseRecord(bad); ok {
			t.Errorf("parseRecord(%q) accepted", bad)
		}
	}
	if got := unescape(escape("a,b\nc\rd")); got != "a,b\nc\rd" {
		t.Errorf("escape round trip = %q", got)
	}
}

// feed runs machine-readable lines through an output, as packer's stdout.
func feed(o Options, lines ...string) (*output, *strings.Builder) {
	log := &strings.Builder{}
	o.Log = log
	out := newOutput(o)
	for _, l := range lines {
		out.stdoutLine(l)
	}
	return out, log
}

// TestArtifactsDeduplicated: artifact 1 (a manifest post-processor's copy of
// 0) and a second build printing the same AMI count once; non-AMI ids and
// other builds' AMIs are kept or dropped as they should be; sorted by region.
func TestArtifactsDeduplicated(t *testing.T) {
	out, _ := feed(Options{},
		`1,amazon-ebs.b,artifact,0,id,us-west-2:ami-0b%!(PACKER_COMMA)eu-west-1:ami-0c`,
		`1,amazon-ebs.a,artifact,0,id,us-east-1:ami-0a%!(PACKER_COMMA)us-west-2:ami-0b`,
		`1,amazon-ebs.a,artifact,1,id,us-east-1:ami-0a%!(PACKER_COMMA)us-west-2:ami-0b`,
		`1,amazon-ebs.a,artifact,1,id,us-east-1:ami-0f`,
		`1,docker.x,artifact,0,id,sha256:abc`,
		`1,amazon-ebs.a,artifact,0,string,AMIs were created:\nus-east-1: ami-0a\n`,
	)
	want := []Artifact{{"eu-west-1", "ami-0c"}, {"us-east-1", "ami-0a"}, {"us-west-2", "ami-0b"}}
	if got := out.artifacts(); !reflect.DeepEqual(got, want) {
		t.Errorf("artifacts = %v, want %v", got, want)
	}
}

// TestOutputHumanLog: ui messages become one unescaped log entry each, the
// blank lines packer wraps them in are dropped, and progress tracks the step.
func TestOutputHumanLog(t *testing.T) {
	var got []Progress
	out, log := feed(Options{Progress: func(p Progress) { got = append(got, p) }},
		`1,,ui,say,==> amazon-ebs.main: Launching a source AWS instance...`,
		`1,,ui,message,    amazon-ebs.main: Instance ID: i-1`,
		`1,,ui,say,\n==> Wait completed after 1 second`,
		`1,,ui,say,--> amazon-ebs.main: AMIs were created:\nus-east-1: ami-0a\n`,
		`1,amazon-ebs.main,artifact-count,1`,
	)
	out.stderrLine("panic: something")
	want := "==> amazon-ebs.main: Launching a source AWS instance...\n" +
		"    amazon-ebs.main: Instance ID: i-1\n==> Wait completed after 1 second\n" +
		"--> amazon-ebs.main: AMIs were created:\nus-east-1: ami-0a\npanic: something\n"
	if log.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", log, want)
	}
	last := got[len(got)-1]
	if len(got) != 5 || last.LastLine != "panic: something" || last.Step != "Wait completed after 1 second" {
		t.Errorf("progress = %+v", got)
	}
	if got[1].Step != "amazon-ebs.main: Launching a source AWS instance..." || got[1].LastLine != "amazon-ebs.main: Instance ID: i-1" {
		t.Errorf("progress[1] = %+v", got[1])
	}
}

// TestOutputErrors: build error lines are preferred over ui errors; without
// them (template errors) the ui errors are reported.
func TestOutputErrors(t *testing.T) {
	out, _ := feed(Options{},
		`1,,ui,error,Build 'a' errored: boom`,
		`1,,error-count,1`,
		`1,amazon-ebs.a,error,boom%!(PACKER_COMMA) twice`,
	)
	if errs, _ := out.failure(); !reflect.DeepEqual(errs, []string{"amazon-ebs.a: boom, twice"}) {
		t.Errorf("errors = %q", errs)
	}
	out, _ = feed(Options{}, `1,,ui,error,Error: Undefined -var variable\n\nA "x" variable\n\n`)
	if errs, tail := out.failure(); !reflect.DeepEqual(errs, []string{"Error: Undefined -var variable\n\nA \"x\" variable"}) || len(tail) != 3 {
		t.Errorf("errors = %q, tail = %q", errs, tail)
	}
}

// TestScrub: secrets go from every field, also when packer escaped a comma or
// newline inside them or a longer secret contains a shorter one.
func TestScrub(t *testing.T) {
	key := "-----BEGIN KEY-----\nMIIEowIBAAKCAQEA1x,yz\n-----END KEY-----"
	s := scrub.New([]string{"", "pw", "pw,long\nsecret", key}, escape)
	cases := map[string]string{
		"x pw y":                             "x <sensitive> y",
		`a pw%!(PACKER_COMMA)long\nsecret b`: "a <sensitive> b",
		"pw,long\nsecret":                    "<sensitive>",
		"nothing":                            "nothing",
		// packer prints a multi-line value one UI line at a time
		"    shell: MIIEowIBAAKCAQEA1x,yz":            "    shell: <sensitive>",
		"shell: MIIEowIBAAKCAQEA1x%!(PACKER_COMMA)yz": "shell: <sensitive>",
		"-----":                    "-----",
		"shell: -----END KEY-----": "shell: <sensitive>",
	}
	for in, want := range cases {
		if got := s.String(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	var errs []string
	out, log := feed(Options{Secrets: []string{"a,b"}, Progress: func(p Progress) { errs = append(errs, p.LastLine) }},
		`1,,ui,message,    x: tag a%!(PACKER_COMMA)b`, `1,t,error,bad a%!(PACKER_COMMA)b`)
	got, tail := out.failure()
	all := log.String() + strings.Join(append(append(got, tail...), errs...), "")
	if strings.Contains(all, "a,b") || strings.Contains(all, "PACKER_COMMA") || !strings.Contains(all, "tag <sensitive>") {
		t.Errorf("scrubbed output = %q", all)
	}
}
