package buildspec

import (
	"fmt"
	"strings"
)

// Error is one problem found in a buildspec file. It names the file, line and
// field so a developer can fix the file without guessing; Parse returns one
// *Error or an errors.Join of several.
type Error struct {
	// File is the name the caller gave Parse.
	File string
	// Line is 1-based; 0 when the problem has no single line (an empty file).
	Line int
	// Field is the dotted path of the offending key, e.g. "phases.build.commands".
	Field string
	// Msg says what is wrong, for people.
	Msg string
}

// Error formats the problem the way compilers do: "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// CommandError says which command failed a build, so the caller can show the
// reason without fetching the whole log. Run returns it together with the
// Result.
type CommandError struct {
	// Phase is the phase the command belongs to.
	Phase string
	// Command is the command's text as written in the buildspec.
	Command string
	// ExitCode is the command's exit status, or the shell's if the command
	// ended the shell (ShellExited); 128+N when killed by signal N.
	ExitCode int
	// ShellExited is true when the command ended the build shell itself (for
	// example with `exit 3`), so later commands ran in a fresh shell.
	ShellExited bool
	// LogTail holds the last lines of the build log up to the failure.
	LogTail []string
}

// Error reads like a CI status line followed by the end of the log.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s: command %q ", e.Phase, e.Command)
	if e.ShellExited {
		fmt.Fprintf(&b, "ended the build shell with status %d", e.ExitCode)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	}
	if len(e.LogTail) > 0 {
		b.WriteString("; last lines of log:\n")
		b.WriteString(strings.Join(e.LogTail, "\n"))
	}
	return b.String()
}
