package buildspec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// How long the pump waits for output before giving up on it. Only a process
// that escaped the build's process group (setsid) can hold the pipe open
// after the build, and it must not hang the activity.
const (
	syncTimeout  = 5 * time.Second
	drainTimeout = 2 * time.Second
)

// logPump is the only writer of RunOptions.Log. The shell's stdout and stderr
// and kiln's banner lines all go into one pipe, so the log shows them in the
// order they happened; a goroutine copies the pipe into the log and the tail.
type logPump struct {
	r, w   *os.File
	out    io.Writer
	token  []byte // marks a point in the stream; see sync
	synced chan struct{}
	done   chan struct{}
	// midLine is true while the log's last line has no newline yet; kiln's
	// lines then start with one, rather than being glued to a command's output.
	midLine atomic.Bool
}

func newLogPump(out io.Writer) (*logPump, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("buildspec: log pipe: %w", err)
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	p := &logPump{
		r: r, w: w, out: out,
		token:  []byte("\x00kiln-sync-" + hex.EncodeToString(nonce) + "\x00"),
		synced: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go p.loop()
	return p, nil
}

// kilnLinePrefix starts each line kiln itself writes into a build's log.
const kilnLinePrefix = "[kiln] "

// printf writes a kiln line into the stream. Lines stay under PIPE_BUF so a
// background process writing at the same time cannot split them.
func (p *logPump) printf(format string, args ...any) {
	p.sync()
	prefix := kilnLinePrefix
	if p.midLine.Load() {
		prefix = "\n" + prefix
	}
	_, _ = fmt.Fprintf(p.w, prefix+format+"\n", args...)
}

// sync returns once everything written to the pipe before the call has reached
// the log, so a failure's LogTail includes the failing command's last words.
func (p *logPump) sync() {
	select {
	case <-p.synced: // left over from a sync that timed out
	default:
	}
	if _, err := p.w.Write(p.token); err != nil {
		return
	}
	select {
	case <-p.synced:
	case <-p.done:
	case <-time.After(syncTimeout):
	}
}

// close stops the pump once the shells are gone, and returns only after the
// pump's last write to the log, so the caller may read the log at once.
func (p *logPump) close() {
	_ = p.w.Close()
	select {
	case <-p.done:
	case <-time.After(drainTimeout):
		_ = p.r.SetReadDeadline(time.Now())
		<-p.done
	}
	_ = p.r.Close()
}

func (p *logPump) loop() {
	defer close(p.done)
	buf := make([]byte, 32*1024)
	var held []byte
	for {
		n, err := p.r.Read(buf)
		if n > 0 {
			held = p.scan(append(held, buf[:n]...))
		}
		if err != nil {
			p.write(held)
			p.flush()
			return
		}
	}
}

// scan writes b to the log, signalling each sync token it removes, and returns
// the tail of b that may be the start of a token split across reads.
func (p *logPump) scan(b []byte) []byte {
	for {
		i := bytes.Index(b, p.token)
		if i < 0 {
			break
		}
		p.write(b[:i])
		p.flush()
		b = b[i+len(p.token):]
		select {
		case p.synced <- struct{}{}:
		default: // a sync that already timed out; nobody is waiting
		}
	}
	keep := 0
	for k := min(len(b), len(p.token)-1); k > 0; k-- {
		if bytes.HasPrefix(p.token, b[len(b)-k:]) {
			keep = k
			break
		}
	}
	p.write(b[:len(b)-keep])
	return append([]byte(nil), b[len(b)-keep:]...)
}

// flush passes on what a scrubbing writer held back, at a sync point: the
// log and its tail must then show everything written so far.
func (p *logPump) flush() {
	if f, ok := p.out.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// write copies b to the log. Errors are ignored: the pipe must keep draining
// or the build would block on a full pipe.
func (p *logPump) write(b []byte) {
	if len(b) == 0 {
		return
	}
	_, _ = p.out.Write(b)
	p.midLine.Store(b[len(b)-1] != '\n')
}
