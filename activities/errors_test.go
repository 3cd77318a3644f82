package activities

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestErrorTypesRegistered: every Err* error type this package declares is
// in PermanentErrorTypes, which the workflows' retry policies do not retry,
// or in RetryableErrorTypes, never both and never neither: a permanent type
// left out would be retried until the attempts run out.
func TestErrorTypesRegistered(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Err") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					typ, _ := strconv.Unquote(lit.Value)
					found++
					perm, retry := slices.Contains(PermanentErrorTypes, typ), slices.Contains(RetryableErrorTypes, typ)
					switch {
					case perm && retry:
						t.Errorf("%s (%s, %s) is both permanent and retryable", n.Name, typ, fset.Position(n.Pos()))
					case !perm && !retry:
						t.Errorf("%s (%s, %s) is in neither PermanentErrorTypes nor RetryableErrorTypes", n.Name, typ, fset.Position(n.Pos()))
					}
				}
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d error types: the scan is broken", found)
	}
}
