package packer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePacker writes an executable script standing in for packer, and a
// template for it to be given.
func fakePacker(t *testing.T, script string) Options {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "packer")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "t.pkr.hcl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{Dir: work, Template: "t.pkr.hcl", Packer: bin}
}

// TestBuildKilledBySignal: a packer the OOM killer takes is a BuildError
// that names the signal and is transient.
func TestBuildKilledBySignal(t *testing.T) {
	_, err := Build(context.Background(), fakePacker(t, "kill -KILL $$"))
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError", err)
	}
	if be.Signal != "killed" || be.ExitCode != -1 {
		t.Errorf("BuildError = %+v, want Signal killed and exit code -1", be)
	}
	if !strings.Contains(err.Error(), `killed by signal "killed"`) {
		t.Errorf("message = %q", err)
	}
	if be.Transient() == "" {
		t.Error("a killed packer must be transient")
	}
}

// TestBuildExitIsNotSignal: a packer that exits 1 names no signal.
func TestBuildExitIsNotSignal(t *testing.T) {
	_, err := Build(context.Background(), fakePacker(t, "echo '1,,ui,error,Build errored: exit status 7'; exit 1"))
	var be *BuildError
	if !errors.As(err, &be) || be.Signal != "" || be.ExitCode != 1 || be.Transient() != "" {
		t.Fatalf("err = %#v", err)
	}
}

// TestBuildStartFailure: a packer that cannot start is ErrStart, not an
// invalid request.
func TestBuildStartFailure(t *testing.T) {
	o := fakePacker(t, "")
	o.Packer = filepath.Join(t.TempDir(), "no-packer-here")
	_, err := Build(context.Background(), o)
	if !errors.Is(err, ErrStart) || errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("err = %v, want ErrStart", err)
	}
	if !strings.Contains(err.Error(), "no-packer-here") || !strings.Contains(err.Error(), "install packer") {
		t.Errorf("message = %q", err)
	}
}

// TestBuildErrorTransient: AWS codes after which a rebuild can succeed are
// transient, wherever packer puts them; template and provisioner failures
// and permanent codes that contain a transient word are not.
func TestBuildErrorTransient(t *testing.T) {
	for msg, want := range map[string]bool{
		"amazon-ebs.main: Error launching source instance: RequestLimitExceeded: Request limit exceeded.\n\tstatus code: 503": true,
		"amazon-ebs.main: Error waiting for AMI: Throttling: Rate exceeded":                                                   true,
		"amazon-ebs.main: InsufficientInstanceCapacity: We currently do not have sufficient t3.micro capacity":                true,
		"amazon-ebs.main: api error InternalError: An internal error has occurred":                                            true,
		"amazon-ebs.main: ServiceUnavailable: Service is unavailable":                                                         true,
		"amazon-ebs.main: Unavailable: try again":                                                                             true,
		"amazon-ebs.main: RequestTimeout: request timed out":                                                                  true,
		"amazon-ebs.main: read tcp 10.0.0.1:443: read: connection reset by peer":                                              true,
		"amazon-ebs.main: Script exited with non-zero exit status: 7":                                                         false,
		"amazon-ebs.main: InvalidAMIID.Unavailable: The image is not available":                                               false,
		"amazon-ebs.main: InvalidParameterValue: bad instance type":                                                           false,
		`"undeclared" variable was passed`:                                                                                    false,
	} {
		be := &BuildError{ExitCode: 1, Errors: []string{"x: first build fine", msg}}
		if got := be.Transient() != ""; got != want {
			t.Errorf("Transient(%q) = %q, want transient %v", msg, be.Transient(), want)
		}
	}
}
