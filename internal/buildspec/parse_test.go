package buildspec

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const fullSpec = `version: 0.2
env:
  shell: /bin/sh
  variables:
    ZED: last-alphabetically
    ALPHA: "a b"
    NUM: 12
    EMPTY:
  parameter-store:
    DB_HOST: /app/prod/db-host
  secrets-manager:
    TOKEN: prod/app:token
    KEY: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf:key::"
  exported-variables:
    - IMAGE_TAG
  git-credential-helper: yes
phases:
  install:
    on-failure: CONTINUE
    commands:
      - apt-get install -y jq
  pre_build:
    commands: ["make deps"]
  build:
    commands:
      - make
      - |
        if true; then
          echo multi
        fi
    finally:
      - make clean
  post_build:
    commands:
      - echo done
artifacts:
  files:
    - '**/*'
  name: app
  base-directory: dist
  discard-paths: yes
  exclude-paths: '**/*.tmp'
cache:
  paths:
    - '/root/.m2/**/*'
    - node_modules/**/*
reports:
  arn:aws:codebuild:eu-west-1:123456789012:report-group/unit:
    files: ['**/*.xml']
    base-directory: target/surefire-reports
    discard-paths: yes
  e2e:
    files: [junit.xml]
    file-format: JUNITXML
`

func TestParseFullSpec(t *testing.T) {
	s := mustParse(t, fullSpec)
	want := &Spec{
		Version: "0.2",
		Env: Env{
			Shell:               "sh",
			Variables:           []Var{{"ZED", "last-alphabetically"}, {"ALPHA", "a b"}, {"NUM", "12"}, {"EMPTY", ""}},
			ExportedVariables:   []string{"IMAGE_TAG"},
			GitCredentialHelper: true,
			ParameterStore:      []SecretVar{{"DB_HOST", "/app/prod/db-host"}},
			SecretsManager:      []SecretVar{{"TOKEN", "prod/app:token"}, {"KEY", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf:key::"}},
		},
		Phases: Phases{
			Install:   &Phase{OnFailure: OnFailureContinue, Commands: []string{"apt-get install -y jq"}},
			PreBuild:  &Phase{OnFailure: OnFailureAbort, Commands: []string{"make deps"}},
			Build:     &Phase{OnFailure: OnFailureAbort, Commands: []string{"make", "if true; then\n  echo multi\nfi\n"}, Finally: []string{"make clean"}},
			PostBuild: &Phase{OnFailure: OnFailureAbort, Commands: []string{"echo done"}},
		},
		Artifacts: Artifacts{Files: []string{"**/*"}, Name: "app", BaseDirectory: "dist", DiscardPaths: true, ExcludePaths: []string{"**/*.tmp"}},
		Cache:     Cache{Paths: []string{"/root/.m2/**/*", "node_modules/**/*"}},
		Reports: []Report{
			{Name: "arn:aws:codebuild:eu-west-1:123456789012:report-group/unit", Files: []string{"**/*.xml"}, BaseDirectory: "target/surefire-reports", DiscardPaths: true, FileFormat: FormatJUnitXML},
			{Name: "e2e", Files: []string{"junit.xml"}, FileFormat: FormatJUnitXML},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%#v\nwant\n%#v", s, want)
	}
}

func TestParseMinimalSpecDefaults(t *testing.T) {
	s := mustParse(t, "version: 0.2\nphases:\n  build:\n    commands: [make]\n")
	if s.Env.Shell != "" || s.Phases.Install != nil || s.Phases.Build.OnFailure != OnFailureAbort {
		t.Errorf("defaults not applied: %#v", s)
	}
	if got := s.Phases.ordered(); len(got) != 1 || got[0].name != PhaseBuild {
		t.Errorf("ordered phases = %v", got)
	}
}

func TestParseVersionForms(t *testing.T) {
	const rest = "\nphases:\n  build:\n    commands: [make]\n"
	for _, v := range []string{"0.2", `"0.2"`, "'0.2'"} {
		if _, err := Parse("b.yml", []byte("version: "+v+rest)); err != nil {
			t.Errorf("version %s: %v", v, err)
		}
	}
	bad := map[string]string{
		"0.1":  `b.yml:1: version: 0.1 is not supported: kiln runs version 0.2`,
		"1.0":  `b.yml:1: version: "1.0" is not a buildspec version kiln supports`,
		"[1]":  `b.yml:1: version: must be 0.2`,
		"0.20": `b.yml:1: version: "0.20" is not`,
	}
	for v, want := range bad {
		_, err := Parse("b.yml", []byte("version: "+v+rest))
		if err == nil {
			t.Errorf("version %s accepted", v)
			continue
		}
		wantContains(t, err.Error(), want)
	}
}

func TestParseAnchorsAndAliases(t *testing.T) {
	s := mustParse(t, `version: 0.2
phases:
  pre_build:
    commands: &cmds
      - echo shared
  build:
    commands: *cmds
`)
	if !reflect.DeepEqual(s.Phases.Build.Commands, []string{"echo shared"}) {
		t.Errorf("alias not resolved: %v", s.Phases.Build.Commands)
	}
}

func TestParseReturnsEveryProblem(t *testing.T) {
	_, err := Parse("b.yml", []byte(`version: 0.2
env:
  secrets-manager:
    BAD-NAME: arn:x
phases:
  build:
    run-as: root
    commands: [make]
`))
	var errs interface{ Unwrap() []error }
	if !errors.As(err, &errs) || len(errs.Unwrap()) != 2 {
		t.Fatalf("want 2 joined errors, got %v", err)
	}
	for _, e := range errs.Unwrap() {
		var pe *Error
		if !errors.As(e, &pe) {
			t.Errorf("%T is not *Error", e)
		}
	}
	wantContains(t, err.Error(), `b.yml:4: env.secrets-manager: "BAD-NAME" is not a valid variable name`)
	wantContains(t, err.Error(), "b.yml:7: phases.build.run-as: is not supported by kiln yet")
}

func TestErrorFormat(t *testing.T) {
	cases := map[string]*Error{
		"b.yml:12: phases.build.commands: must be a list of strings": {File: "b.yml", Line: 12, Field: "phases.build.commands", Msg: "must be a list of strings"},
		"b.yml: empty buildspec":                                     {File: "b.yml", Msg: "empty buildspec"},
		"b.yml:3: invalid YAML":                                      {File: "b.yml", Line: 3, Msg: "invalid YAML"},
	}
	for want, e := range cases {
		if got := e.Error(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestParseIgnoresCacheKeys keeps buildspecs written for CodeBuild's keyed
// caches running: the keys are checked, recorded as ignored, and logged,
// while the paths are kept.
func TestParseIgnoresCacheKeys(t *testing.T) {
	spec, err := Parse("b.yml", []byte(`version: 0.2
phases:
  build:
    commands: [true]
cache:
  key: npm-$(codebuild-hash-files package-lock.json)
  fallback-keys: [npm-]
  action: restore
  paths: [node_modules/**/*]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{"cache.key: " + cacheKeyIgnored, "cache.fallback-keys: " + cacheKeyIgnored, "cache.action: " + cacheKeyIgnored}
	if !reflect.DeepEqual(spec.Ignored, want) || !reflect.DeepEqual(spec.Cache.Paths, []string{"node_modules/**/*"}) {
		t.Fatalf("Ignored = %q, Cache = %q", spec.Ignored, spec.Cache)
	}
	var log strings.Builder
	if _, err := spec.Run(context.Background(), RunOptions{Dir: t.TempDir(), Log: &log}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantContains(t, log.String(), "buildspec cache.fallback-keys: kiln does not key its caches")
}

// TestParseCacheAndReportsAreNotIgnored: sections kiln now reads leave
// nothing in Ignored, and an empty one is accepted as absent.
func TestParseCacheAndReportsAreNotIgnored(t *testing.T) {
	for _, tail := range []string{
		"cache:\n  paths: [x]\nreports:\n  r:\n    files: [x]\n",
		"cache:\nreports:\n",
	} {
		spec := mustParse(t, "version: 0.2\nphases:\n  build:\n    commands: [true]\n"+tail)
		if len(spec.Ignored) != 0 {
			t.Errorf("%q: Ignored = %q", tail, spec.Ignored)
		}
	}
}
