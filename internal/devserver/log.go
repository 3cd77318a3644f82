package devserver

import (
	"fmt"

	"github.com/rs/zerolog"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// temporalLogger writes the server's logs through zerolog, so `kiln dev` has
// one log format. The server's Fatal does not exit here: kiln decides.
type temporalLogger struct{ z zerolog.Logger }

func newTemporalLogger(z zerolog.Logger) log.Logger {
	return temporalLogger{z: z.With().Str("component", "temporal").Logger()}
}

func (l temporalLogger) Debug(msg string, tags ...tag.Tag) { l.emit(l.z.Debug(), msg, tags) }
func (l temporalLogger) Info(msg string, tags ...tag.Tag)  { l.emit(l.z.Info(), msg, tags) }
func (l temporalLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(l.z.Warn(), msg, tags) }
func (l temporalLogger) Error(msg string, tags ...tag.Tag) { l.emit(l.z.Error(), msg, tags) }
func (l temporalLogger) DPanic(msg string, tags ...tag.Tag) {
	l.emit(l.z.Error(), msg, tags)
}
func (l temporalLogger) Panic(msg string, tags ...tag.Tag) { l.emit(l.z.Error(), msg, tags) }
func (l temporalLogger) Fatal(msg string, tags ...tag.Tag) { l.emit(l.z.Error(), msg, tags) }

// With keeps tags for later messages, as the server's loggers expect.
func (l temporalLogger) With(tags ...tag.Tag) log.Logger {
	ctx := l.z.With()
	for _, t := range tags {
		ctx = ctx.Interface(t.Key(), tagValue(t))
	}
	return temporalLogger{z: ctx.Logger()}
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
