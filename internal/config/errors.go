package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ValidationError is one problem in a kiln.yaml, located by line and field so
// that a person can go straight to it.
type ValidationError struct {
	// File is the config's path, as given to Load or Parse.
	File string
	// Line is the 1-based line the problem is on, or 0 when it is not known.
	Line int
	// Field is the readable path of the value concerned, such as
	// "pipelines[0].stages.build.timeout"; empty when it is the whole file.
	Field string
	// Msg says what is wrong, for people.
	Msg string
}

// Error formats the problem as `kiln.yaml:14: pipelines[0].name: msg`.
func (e ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationErrors is every problem found in one config, sorted by line. Load
// and Parse return it, so a person fixes everything in one pass.
type ValidationErrors []ValidationError

// Error lists the problems, one a line.
func (es ValidationErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.As and errors.Is.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// place is where a value sits in kiln.yaml.
type place struct {
	line  int
	field string
}

// problems collects the ValidationErrors of one file.
type problems struct {
	file string
	list ValidationErrors
}

func (p *problems) add(at place, format string, args ...any) {
	p.list = append(p.list, ValidationError{
		File: p.file, Line: at.line, Field: at.field, Msg: fmt.Sprintf(format, args...),
	})
}

func (p *problems) any() bool { return len(p.list) > 0 }

// err returns the problems sorted by line then field, or nil if there are none.
// Two checks may find the same problem; it is reported once.
func (p *problems) err() error {
	if !p.any() {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b ValidationError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
	return slices.Compact(p.list)
}
