package buildspec

import (
	"errors"
	"strings"
	"testing"
)

// TestParseErrors checks each kind of problem is reported with its line and
// field, since that is what lets an author fix the file.
func TestParseErrors(t *testing.T) {
	const build = "phases:\n  build:\n    commands: [make]\n"
	cases := []struct {
		name, src string
		line      int
		field     string
		msg       string
	}{
		{"unknown top-level key", "version: 0.2\n" + build + "phasess: {}\n", 5, "phasess", "unknown field; expected one of: version, env, phases, artifacts"},
		{"unknown phase", "version: 0.2\nphases:\n  compile:\n    commands: [make]\n", 3, "phases.compile", "unknown field"},
		{"unknown phase key", "version: 0.2\nphases:\n  build:\n    command: [make]\n", 4, "phases.build.command", "unknown field; expected one of: on-failure, commands, finally"},
		{"commands not a list", "version: 0.2\nphases:\n  build:\n    commands: make\n", 4, "phases.build.commands", "must be a list of strings"},
		{"command parsed as mapping", "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      - echo a: b\n", 6, "phases.build.commands", "must be a list of strings"},
		{"finally not a list", "version: 0.2\nphases:\n  build:\n    commands: [make]\n    finally: {a: b}\n", 5, "phases.build.finally", "must be a list of strings"},
		{"phase without commands", "version: 0.2\nphases:\n  build:\n    finally: [x]\n", 3, "phases.build.commands", "is required"},
		{"no phases", "version: 0.2\nenv: {}\n", 1, "phases", "is required"},
		{"empty phases", "version: 0.2\nphases: {}\n", 2, "phases", "must contain at least one phase"},
		{"phase not a mapping", "version: 0.2\nphases:\n  build: [make]\n", 3, "phases.build", "must be a mapping"},
		{"top-level run-as", "version: 0.2\nrun-as: root\n" + build, 2, "run-as", "is not supported by kiln yet"},
		{"phase run-as", "version: 0.2\nphases:\n  build:\n    run-as: root\n    commands: [make]\n", 4, "phases.build.run-as", "is not supported by kiln yet"},
		{"runtime-versions", "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      golang: 1.22\n    commands: [make]\n", 4, "phases.install.runtime-versions", "is not supported by kiln yet"},
		{"parameter-store name", "version: 0.2\nenv:\n  parameter-store:\n    K: /p\n    1K: /q\n" + build, 5, "env.parameter-store", `"1K" is not a valid variable name`},
		{"parameter-store empty", "version: 0.2\nenv:\n  parameter-store:\n    K:\n" + build, 4, "env.parameter-store.K", "must not be empty"},
		{"parameter-store not a mapping", "version: 0.2\nenv:\n  parameter-store: [K]\n" + build, 3, "env.parameter-store", "must be a mapping"},
		{"secrets-manager name", "version: 0.2\nenv:\n  secrets-manager:\n    $(id): s\n" + build, 4, "env.secrets-manager", `"$(id)" is not a valid variable name`},
		{"secrets-manager blank", "version: 0.2\nenv:\n  secrets-manager:\n    K: '  '\n" + build, 4, "env.secrets-manager.K", "must not be empty"},
		{"secrets-manager list", "version: 0.2\nenv:\n  secrets-manager:\n    K: [a, b]\n" + build, 4, "env.secrets-manager.K", "must be a string"},
		{"secrets-manager twice", "version: 0.2\nenv:\n  secrets-manager:\n    K: a\n    K: b\n" + build, 5, "env.secrets-manager.K", "appears twice (first on line 4)"},
		{"bad variable name", "version: 0.2\nenv:\n  variables:\n    OK: 1\n    BAD-NAME: 2\n" + build, 5, "env.variables", `"BAD-NAME" is not a valid variable name`},
		{"variable value mapping", "version: 0.2\nenv:\n  variables:\n    V: {a: b}\n" + build, 4, "env.variables.V", "must be a string"},
		{"bad exported name", "version: 0.2\nenv:\n  exported-variables:\n    - OK\n    - $(id)\n" + build, 5, "env.exported-variables", `"$(id)" is not a valid variable name`},
		{"windows shell", "version: 0.2\nenv:\n  shell: powershell.exe\n" + build, 3, "env.shell", `"powershell.exe" is not supported; use bash or /bin/sh`},
		{"git-credential-helper", "version: 0.2\nenv:\n  git-credential-helper: maybe\n" + build, 3, "env.git-credential-helper", "must be yes or no"},
		{"on-failure retry", "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3\n    commands: [make]\n", 4, "phases.build.on-failure", "RETRY-3 is not supported by kiln yet"},
		{"on-failure bogus", "version: 0.2\nphases:\n  build:\n    on-failure: abort\n    commands: [make]\n", 4, "phases.build.on-failure", `"abort" is not valid; use ABORT or CONTINUE`},
		{"artifacts without files", "version: 0.2\n" + build + "artifacts:\n  name: x\n", 5, "artifacts.files", "is required when artifacts is present"},
		{"escaping base-directory", "version: 0.2\n" + build + "artifacts:\n  files: [a]\n  base-directory: ../up\n", 7, "artifacts.base-directory", "must be a relative path inside the source directory"},
		{"absolute base-directory", "version: 0.2\n" + build + "artifacts:\n  files: [a]\n  base-directory: /etc\n", 7, "artifacts.base-directory", "must be a relative path"},
		{"escaping files pattern", "version: 0.2\n" + build + "artifacts:\n  files:\n    - ok\n    - ../secret\n", 8, "artifacts.files", "must be relative and stay inside the base directory"},
		{"invalid glob", "version: 0.2\n" + build + "artifacts:\n  files: ['[a-']\n", 6, "artifacts.files", "is not a valid glob pattern"},
		{"discard-paths", "version: 0.2\n" + build + "artifacts:\n  files: [a]\n  discard-paths: 2\n", 7, "artifacts.discard-paths", "must be yes or no"},
		{"s3-prefix", "version: 0.2\n" + build + "artifacts:\n  files: [a]\n  s3-prefix: x\n", 7, "artifacts.s3-prefix", "is not supported by kiln yet"},
		{"cache without paths", "version: 0.2\n" + build + "cache:\n  key: k\n", 5, "cache.paths", "is required when cache is present"},
		{"cache paths not a list", "version: 0.2\n" + build + "cache:\n  paths: /root/.m2\n", 6, "cache.paths", "must be a list of strings"},
		{"cache path empty", "version: 0.2\n" + build + "cache:\n  paths:\n    - a\n    - ''\n", 8, "cache.paths", "must not be empty"},
		{"cache fallback-keys", "version: 0.2\n" + build + "cache:\n  paths: [a]\n  fallback-keys: k\n", 7, "cache.fallback-keys", "must be a list of strings"},
		{"cache unknown key", "version: 0.2\n" + build + "cache:\n  path: [a]\n", 6, "cache.path", "unknown field; expected one of: paths, key, fallback-keys, action"},
		{"report without files", "version: 0.2\n" + build + "reports:\n  unit:\n    base-directory: out\n", 6, "reports.unit.files", "is required"},
		{"report null", "version: 0.2\n" + build + "reports:\n  unit:\n", 6, "reports.unit.files", "is required"},
		{"report not a mapping", "version: 0.2\n" + build + "reports:\n  unit: [a.xml]\n", 6, "reports.unit", "must be a mapping"},
		{"report escaping files", "version: 0.2\n" + build + "reports:\n  unit:\n    files: [../x.xml]\n", 7, "reports.unit.files", "must be relative and stay inside the base directory"},
		{"report escaping base-directory", "version: 0.2\n" + build + "reports:\n  unit:\n    files: [x.xml]\n    base-directory: /tmp\n", 8, "reports.unit.base-directory", "must be a relative path inside the source directory"},
		{"report discard-paths", "version: 0.2\n" + build + "reports:\n  unit:\n    files: [x]\n    discard-paths: sometimes\n", 8, "reports.unit.discard-paths", "must be yes or no"},
		{"report unknown key", "version: 0.2\n" + build + "reports:\n  unit:\n    file: [x]\n", 7, "reports.unit.file", "unknown field; expected one of: files, base-directory, discard-paths, file-format"},
		{"report other format", "version: 0.2\n" + build + "reports:\n  cov:\n    files: [c.xml]\n    file-format: COBERTURAXML\n", 8, "reports.cov.file-format", "COBERTURAXML is not supported by kiln yet: kiln reads only JUNITXML reports"},
		{"report lower-case format", "version: 0.2\n" + build + "reports:\n  unit:\n    files: [x]\n    file-format: junitxml\n", 8, "reports.unit.file-format", `"junitxml" must be written in capitals: JUNITXML`},
		{"report unknown format", "version: 0.2\n" + build + "reports:\n  unit:\n    files: [x]\n    file-format: XUNIT\n", 8, "reports.unit.file-format",
			`"XUNIT" is not a report format; CodeBuild's are JUNITXML, CLOVERXML, COBERTURAXML, CUCUMBERJSON, JACOCOXML, NUNIT3XML, NUNITXML, SIMPLECOV, TESTNGXML, VISUALSTUDIOTRX`},
		{"report empty name", "version: 0.2\n" + build + "reports:\n  '':\n    files: [x]\n", 6, "reports", "a report group needs a name or ARN"},
		{"duplicate key", "version: 0.2\n" + build + "phases: {}\n", 5, "phases", "appears twice (first on line 2)"},
		{"missing version", build, 1, "version", "is required"},
		{"yaml syntax", "version: 0.2\nphases:\n  build:\n    commands: [make\n", 3, "", "invalid YAML"},
		{"top level list", "- a\n- b\n", 1, "", "must be a mapping of buildspec keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("buildspec.yml", []byte(c.src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *Error, got %T: %v", err, err)
			}
			if pe.File != "buildspec.yml" || pe.Line != c.line || pe.Field != c.field || !strings.Contains(pe.Msg, c.msg) {
				t.Errorf("got %s (line %d, field %q)\nwant line %d, field %q, message containing %q", pe, pe.Line, pe.Field, c.line, c.field, c.msg)
			}
		})
	}
}

func TestParseEmptyFile(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n"} {
		_, err := Parse("b.yml", []byte(src))
		if err == nil || err.Error() != "b.yml: empty buildspec" {
			t.Errorf("Parse(%q) = %v", src, err)
		}
	}
}
