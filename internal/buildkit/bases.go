package buildkit

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Bases lists the images a Dockerfile builds on: each FROM that names
// neither an earlier stage nor scratch, with ARGs before the first FROM
// expanded (build args over their defaults), in order, once each. kiln
// resolves them to digests before the build, so the build uses exactly the
// bases it records. A Dockerfile that does not parse is ErrInvalid.
func Bases(dockerfile []byte, buildArgs map[string]string) ([]string, error) {
	ast, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, fmt.Errorf("%w: Dockerfile: %v", ErrInvalid, err)
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: Dockerfile: %v", ErrInvalid, err)
	}
	args := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				args[kv.Key] = v
			} else if kv.Value != nil {
				args[kv.Key] = *kv.Value
			}
		}
	}
	env := make([]string, 0, len(args))
	for _, k := range slices.Sorted(maps.Keys(args)) {
		env = append(env, k+"="+args[k])
	}
	lex := shell.NewLex(ast.EscapeToken)
	stageNames := map[string]bool{}
	var out []string
	for _, st := range stages {
		base, _, err := lex.ProcessWord(st.BaseName, shell.EnvsFromSlice(env))
		if err != nil {
			return nil, fmt.Errorf("%w: Dockerfile: FROM %s: %v", ErrInvalid, st.BaseName, err)
		}
		if base == "" {
			return nil, fmt.Errorf("%w: Dockerfile: FROM %s is empty once its ARGs are expanded", ErrInvalid, st.BaseName)
		}
		external := !strings.EqualFold(base, "scratch") && !stageNames[strings.ToLower(base)]
		if external && !slices.Contains(out, base) {
			out = append(out, base)
		}
		if st.Name != "" {
			stageNames[strings.ToLower(st.Name)] = true
		}
	}
	return out, nil
}
