package buildspec

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// notYet is the reason given for CodeBuild features kiln may support later.
const notYet = "is not supported by kiln yet"

// Parse parses a version 0.2 buildspec. file names the buildspec in errors.
// Errors are *Error values (several are joined with errors.Join), each naming
// the file, line and field at fault.
func Parse(file string, data []byte) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty buildspec"}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "must be a mapping of buildspec keys (version, env, phases, artifacts)"}
	}
	p := &parser{file: file}
	// The version decides what every other key means, so check it alone first.
	if !p.version(root) {
		return nil, p.err()
	}
	s := &Spec{Version: "0.2"}
	p.top(root, s)
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	return s, nil
}

// version accepts 0.2 written as a number or a string.
func (p *parser) version(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "version" {
			continue
		}
		v := deref(root.Content[i+1])
		switch {
		case v.Kind != yaml.ScalarNode:
			p.errorf(v, "version", "must be 0.2")
		case v.Value == "0.2":
			return true
		case v.Value == "0.1":
			p.errorf(v, "version", "0.1 is not supported: kiln runs version 0.2, where all commands share one shell; change the file to version: 0.2")
		default:
			p.errorf(v, "version", "%q is not a buildspec version kiln supports; use 0.2", v.Value)
		}
		return false
	}
	p.errorf(root, "version", "is required (version: 0.2)")
	return false
}

func (p *parser) top(root *yaml.Node, s *Spec) {
	var sawPhases bool
	p.mapping(root, "", section{
		order: []string{"version", "env", "phases", "artifacts", "cache", "reports"},
		known: map[string]func(k, v *yaml.Node){
			"version":   func(k, v *yaml.Node) {},
			"env":       func(k, v *yaml.Node) { p.env(v, &s.Env) },
			"phases":    func(k, v *yaml.Node) { sawPhases = true; p.phases(v, &s.Phases) },
			"artifacts": func(k, v *yaml.Node) { p.artifacts(k, v, &s.Artifacts) },
			"cache":     func(k, v *yaml.Node) { p.cache(k, v, s) },
			"reports":   func(k, v *yaml.Node) { s.Reports = p.reports(v) },
		},
		unsupported: map[string]string{
			"run-as": notYet + ": builds run as kiln's worker user",
			"proxy":  notYet,
			"batch":  notYet + ": use several kiln pipelines instead",
		},
	})
	if !sawPhases {
		p.errorf(root, "phases", "is required")
	}
}

func (p *parser) env(n *yaml.Node, e *Env) {
	p.mapping(n, "env", section{
		order: []string{"shell", "variables", "parameter-store", "secrets-manager", "exported-variables", "git-credential-helper"},
		known: map[string]func(k, v *yaml.Node){
			"shell":                 func(k, v *yaml.Node) { p.shell(v, e) },
			"variables":             func(k, v *yaml.Node) { e.Variables = p.variables(v) },
			"parameter-store":       func(k, v *yaml.Node) { e.ParameterStore = p.secretVars(v, "env.parameter-store") },
			"secrets-manager":       func(k, v *yaml.Node) { e.SecretsManager = p.secretVars(v, "env.secrets-manager") },
			"exported-variables":    func(k, v *yaml.Node) { e.ExportedVariables = p.exported(v) },
			"git-credential-helper": func(k, v *yaml.Node) { e.GitCredentialHelper = p.boolean(v, "env.git-credential-helper") },
		},
	})
}

// shell accepts the Linux shell tags CodeBuild documents.
func (p *parser) shell(n *yaml.Node, e *Env) {
	v, ok := p.scalar(n, "env.shell")
	if !ok {
		return
	}
	switch v {
	case "bash", "/bin/bash":
		e.Shell = "bash"
	case "sh", "/bin/sh":
		e.Shell = "sh"
	default:
		p.errorf(n, "env.shell", "%q is not supported; use bash or /bin/sh", v)
	}
}

// variables keeps file order, which a Go map would lose.
func (p *parser) variables(n *yaml.Node) []Var {
	var vars []Var
	p.mapping(n, "env.variables", section{each: func(k, v *yaml.Node) {
		if !validName(k.Value) {
			p.errorf(k, "env.variables", "%q is not a valid variable name (letters, digits and _, not starting with a digit)", k.Value)
			return
		}
		value := ""
		if !isNull(v) {
			value, _ = p.scalar(v, joinField("env.variables", k.Value))
		}
		vars = append(vars, Var{Name: k.Value, Value: value})
	}})
	return vars
}

// secretVars reads a mapping of variable names to where their values are
// kept. An empty reference is refused here: the worker would only fail later,
// further from the line at fault.
func (p *parser) secretVars(n *yaml.Node, field string) []SecretVar {
	var vars []SecretVar
	p.mapping(n, field, section{each: func(k, v *yaml.Node) {
		if !validName(k.Value) {
			p.errorf(k, field, "%q is not a valid variable name (letters, digits and _, not starting with a digit)", k.Value)
			return
		}
		f := joinField(field, k.Value)
		if isNull(v) || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
			p.errorf(v, f, "must not be empty")
			return
		}
		if ref, ok := p.scalar(v, f); ok {
			vars = append(vars, SecretVar{Name: k.Value, Ref: ref})
		}
	}})
	return vars
}

func (p *parser) exported(n *yaml.Node) []string {
	names, nodes := p.stringList(n, "env.exported-variables", false)
	for i, name := range names {
		if !validName(name) {
			p.errorf(nodes[i], "env.exported-variables", "%q is not a valid variable name", name)
		}
	}
	return names
}
