package devserver

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// temporalLogger writes the server's logs through zerolog, so `kiln dev` has
// one log format. The server's Fatal does not exit here: kiln decides. It is
// kept in fatal, so the caller can stop before the server runs on with what
// failed (a listener it could not bind is nil, and serving it panics).
type temporalLogger struct {
	z     zerolog.Logger
	fatal *fatalLog
}

func newTemporalLogger(z zerolog.Logger, fatal *fatalLog) log.Logger {
	return temporalLogger{z: z.With().Str("component", "temporal").Logger(), fatal: fatal}
}

func (l temporalLogger) Debug(msg string, tags ...tag.Tag) { l.emit(l.z.Debug(), msg, tags) }
func (l temporalLogger) Info(msg string, tags ...tag.Tag)  { l.emit(l.z.Info(), msg, tags) }
func (l temporalLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(l.z.Warn(), msg, tags) }
func (l temporalLogger) Error(msg string, tags ...tag.Tag) { l.emit(l.z.Error(), msg, tags) }
func (l temporalLogger) DPanic(msg string, tags ...tag.Tag) {
	l.emit(l.z.Error(), msg, tags)
}
func (l temporalLogger) Panic(msg string, tags ...tag.Tag) { l.emit(l.z.Error(), msg, tags) }
func (l temporalLogger) Fatal(msg string, tags ...tag.Tag) {
	l.fatal.add(msg, tags)
	l.emit(l.z.Error(), msg, tags)
}

// fatalLog keeps the server's first fatal message.
type fatalLog struct {
	mu  sync.Mutex
	err error
}

func (f *fatalLog) add(msg string, tags []tag.Tag) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	parts := []string{msg}
	for _, t := range tags {
		parts = append(parts, fmt.Sprintf("%s=%v", t.Key(), tagValue(t)))
	}
	f.err = errors.New(strings.Join(parts, " "))
}

// Err is the first fatal message, or nil.
func (f *fatalLog) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// With keeps tags for later messages, as the server's loggers expect.
func (l temporalLogger) With(tags ...tag.Tag) log.Logger {
	ctx := l.z.With()
	for _, t := range tags {
		ctx = ctx.Interface(t.Key(), tagValue(t))
	}
	return temporalLogger{z: ctx.Logger(), fatal: l.fatal}
}

func (l temporalLogger) emit(e *zerolog.Event, msg string, tags []tag.Tag) {
	if e == nil {
		return
	}
	for _, t := range tags {
		e = e.Interface(t.Key(), tagValue(t))
	}
	e.Msg(msg)
}

func tagValue(t tag.Tag) any {
	v := t.Value()
	if err, ok := v.(error); ok {
		return err.Error()
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return v
}

// quietSDKLogger silences the SDK client used for set-up calls.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...any) {}
func (quietSDKLogger) Info(string, ...any)  {}
func (quietSDKLogger) Warn(string, ...any)  {}
func (quietSDKLogger) Error(string, ...any) {}
