package buildspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostile are values an attacker can put in a branch name, PR title or commit
// message. Each would create a file named pwned* if any shell parsed it.
var hostile = []string{
	"$(touch pwned1)",
	"; touch pwned2",
	"`touch pwned3`",
	"() { :;}; touch pwned4",
	"\"'\n$(touch pwned5)\n'\"",
	"' ; touch pwned6 ; '",
	"\\\"; touch pwned7 #",
	"$HOME ${PATH} %s %n -- --help",
	"&& touch pwned8 || touch pwned9 | touch pwned10",
	"x\ntouch pwned11\n",
}

// TestRunEventValuesAreNeverCode: webhook values reach commands only as
// environment variables, literally, and are never run as shell code, also
// when exported back or given through env.variables.
func TestRunEventValuesAreNeverCode(t *testing.T) {
	var env, names, commands []string
	for i, v := range hostile {
		name := fmt.Sprintf("KILN_V%d", i)
		env = append(env, name+"="+v)
		names = append(names, name)
		commands = append(commands,
			fmt.Sprintf("      - printenv %s", name),
			fmt.Sprintf(`      - printf '<%%s>\n' "$%s"`, name))
	}
	src := "version: 0.2\nenv:\n  variables:\n    SPEC_VALUE: \"$(touch pwned-spec)\"\n" +
		"  exported-variables: [" + strings.Join(names, ", ") + "]\n" +
		"phases:\n  build:\n    commands:\n" + strings.Join(commands, "\n") + "\n" +
		"      - printenv SPEC_VALUE\n"
	b := runSpec(t, src, func(o *RunOptions) { o.Env = env })
	if b.err != nil {
		t.Fatalf("Run: %v\n%s", b.err, b.log.String())
	}
	log := b.log.String()
	for i, v := range hostile {
		wantContains(t, log, "\n"+v+"\n") // printenv
		wantContains(t, log, "<"+v+">\n")
		if got := b.res.Exported[names[i]]; got != v {
			t.Errorf("Exported[%s] = %q, want %q", names[i], got, v)
		}
	}
	wantContains(t, log, "\n$(touch pwned-spec)\n")
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("a value was run as code: %s exists", filepath.Join(b.dir, e.Name()))
	}
}
