package packer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestValidate: templates and var files outside the checkout or missing, bad
// variable names and malformed env entries are refused before packer runs.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"t.pkr.hcl", "v.pkrvars.hcl"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok := Options{Dir: dir, Template: "t.pkr.hcl", Packer: "/nonexistent/packer"}
	cases := map[string]func(o *Options){
		"no dir":          func(o *Options) { o.Dir = "" },
		"no template":     func(o *Options) { o.Template = "" },
		"parent template": func(o *Options) { o.Template = "../t.pkr.hcl" },
		"abs template":    func(o *Options) { o.Template = filepath.Join(dir, "t.pkr.hcl") },
		"missing":         func(o *Options) { o.Template = "missing.pkr.hcl" },
		"var file out":    func(o *Options) { o.VarFiles = []string{"v.pkrvars.hcl", "/etc/passwd"} },
		"var name space":  func(o *Options) { o.Vars = map[string]string{"a b": "1"} },
		"var name flag":   func(o *Options) { o.Vars = map[string]string{"-force": "1"} },
		"var name equals": func(o *Options) { o.Vars = map[string]string{"a=b": "1"} },
		"env":             func(o *Options) { o.Env = []string{"AWS_SECRET_ACCESS_KEY"} },
		"manifest out":    func(o *Options) { o.Manifest = "../m.json" },
	}
	for name, mutate := range cases {
		o := ok
		mutate(&o)
		if _, err := Build(context.Background(), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
	o := ok
	o.VarFiles = []string{"v.pkrvars.hcl"}
	o.Vars = map[string]string{"ok_name-1": "$(rm -rf /); x", "_a": ""}
	if _, err := Build(context.Background(), o); errors.Is(err, ErrInvalidOptions) || err == nil {
		t.Errorf("valid options refused or fake binary ran: %v", err)
	}
}

// TestArgs: variables in name order, values as single argv elements, the
// template last and unmistakable for a flag.
func TestArgs(t *testing.T) {
	o := Options{Template: "-t.pkr.hcl", VarFiles: []string{"a.hcl"},
		Vars: map[string]string{"z": "1", "a": "x y; $(z)"}}
	want := []string{"build", "-machine-readable", "-color=false", "-var", "a=x y; $(z)",
		"-var", "z=1", "-var-file", "a.hcl", "./-t.pkr.hcl"}
	if got := o.args(""); !reflect.DeepEqual(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
}

// TestSecretVarsStayOffTheCommandLine: secret variables go to a var file only
// this user can read, passed after the repository's own, never as -var.
func TestSecretVarsStayOffTheCommandLine(t *testing.T) {
	o := Options{Template: "t.pkr.hcl", VarFiles: []string{"a.hcl"},
		Vars: map[string]string{"region": "us-east-1"}, SecretVars: map[string]string{"db_password": "hunter2"}}
	file, cleanup, err := o.writeSecretVars()
	if err != nil {
		t.Fatal(err)
	}
	args := o.args(file)
	if strings.Contains(strings.Join(args, " "), "hunter2") {
		t.Errorf("args hold the secret: %q", args)
	}
	if n := len(args); args[n-3] != "-var-file" || args[n-2] != file {
		t.Errorf("secret var file is not the last var file: %q", args)
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("secret var file mode = %v, want 0600", info.Mode().Perm())
	}
	body, _ := os.ReadFile(file)
	if string(body) != `{"db_password":"hunter2"}` {
		t.Errorf("secret var file = %s", body)
	}
	cleanup()
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("secret var file still there after cleanup: %v", err)
	}
	none, _, err := (&Options{}).writeSecretVars()
	if none != "" || err != nil {
		t.Errorf("no secret vars wrote %q, %v", none, err)
	}
}

// TestBuildAlreadyCancelled: a done context never starts packer.
func TestBuildAlreadyCancelled(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "t.pkr.hcl"), nil, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, Options{Dir: dir, Template: "t.pkr.hcl"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}
