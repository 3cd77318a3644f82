package buildspec

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestTailWriterKeepsLastLines(t *testing.T) {
	tw := NewTailWriter(3)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(tw, "line %d\n", i)
	}
	if got, want := tw.Lines(), []string{"line 3", "line 4", "line 5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

func TestTailWriterSplitWritesAndPartialLine(t *testing.T) {
	tw := NewTailWriter(3)
	for _, chunk := range []string{"a", "b\nc", "d\r\ne", "f"} {
		tw.Write([]byte(chunk))
	}
	// The unfinished last line counts, and pushes out the oldest.
	if got, want := tw.Lines(), []string{"ab", "cd", "ef"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	tw = NewTailWriter(3)
	tw.Write([]byte("x\nunfinished"))
	if got, want := tw.Lines(), []string{"x", "unfinished"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

func TestTailWriterCarriageReturnsAndLongLines(t *testing.T) {
	tw := NewTailWriter(0)
	tw.Write([]byte("10%\r50%\r100%\n"))
	tw.Write([]byte(strings.Repeat("x", 3*maxTailLineBytes) + "\n"))
	got := tw.Lines()
	if len(got) != 2 || got[0] != "100%" || len(got[1]) != maxTailLineBytes {
		t.Errorf("Lines = %.40q", got)
	}
	if cap(tw.ring) != DefaultTailLines {
		t.Errorf("n<1 gave %d lines, want the default %d", cap(tw.ring), DefaultTailLines)
	}
}

// TestLogPumpScanFindsSplitTokens feeds the stream in every possible split,
// as pipe reads may cut a sync token anywhere.
func TestLogPumpScanFindsSplitTokens(t *testing.T) {
	stream := "before" + "\x00tok\x00" + "middle\x00partial" + "\x00tok\x00" + "after"
	for cut := 0; cut <= len(stream); cut++ {
		var out bytes.Buffer
		p := &logPump{out: &out, token: []byte("\x00tok\x00"), synced: make(chan struct{}, 2)}
		held := p.scan([]byte(stream[:cut]))
		held = p.scan(append(held, stream[cut:]...))
		out.Write(held)
		if out.String() != "beforemiddle\x00partialafter" || len(p.synced) != 2 {
			t.Errorf("cut %d: log %q, %d syncs", cut, out.String(), len(p.synced))
		}
	}
}
