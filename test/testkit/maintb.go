package testkit

import (
	"fmt"
	"os"
	"testing"
)

// MainTB lets a TestMain use the helpers that take a testing.TB (motoserver,
// awsproxy) outside any test: cleanups run at Close, and a fatal set-up
// error panics with a SetupFailure, which Recover turns back into an error.
// Other TB methods are not implemented and panic if called.
type MainTB struct {
	testing.TB
	cleanups []func()
}

// SetupFailure is the panic value of MainTB's Fatal.
type SetupFailure string

func (f SetupFailure) Error() string { return string(f) }

func (tb *MainTB) Helper()                   {}
func (tb *MainTB) Name() string              { return "TestMain" }
func (tb *MainTB) Cleanup(f func())          { tb.cleanups = append(tb.cleanups, f) }
func (tb *MainTB) Fatal(args ...any)         { panic(SetupFailure(fmt.Sprint(args...))) }
func (tb *MainTB) Fatalf(f string, a ...any) { panic(SetupFailure(fmt.Sprintf(f, a...))) }
func (tb *MainTB) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, f+"\n", a...) }

// Close runs the registered cleanups, last first, as testing does.
func (tb *MainTB) Close() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

// Recover, deferred in a TestMain's set-up function, turns a SetupFailure
// panic into *err; other panics go on.
func Recover(err *error) {
	switch r := recover().(type) {
	case nil:
	case SetupFailure:
		*err = r
	default:
		panic(r)
	}
}
