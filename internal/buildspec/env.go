package buildspec

import "strings"

// buildEnv assembles a build shell's environment. Later sources win: the
// worker's base environment, then env.variables, then the event's variables,
// then the CODEBUILD_* variables kiln owns. Values are passed to the shell
// as-is; the shell never parses them as code.
func buildEnv(base []string, vars []Var, event []string, srcDir string, failed bool) []string {
	var out []string
	index := map[string]int{}
	set := func(key, value string) {
		kv := key + "=" + value
		if i, ok := index[key]; ok {
			out[i] = kv
			return
		}
		index[key] = len(out)
		out = append(out, kv)
	}
	setAll := func(list []string) {
		for _, kv := range list {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				set(k, v)
			}
		}
	}
	setAll(base)
	for _, v := range vars {
		set(v.Name, v.Value)
	}
	setAll(event)
	succeeding := "1"
	if failed {
		succeeding = "0"
	}
	set("CODEBUILD_SRC_DIR", srcDir)
	set("CODEBUILD_BUILD_SUCCEEDING", succeeding)
	return out
}
