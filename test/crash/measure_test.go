package crash

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kiln-ci/kiln/test/awsproxy"
)

// measurement is the timeline of one crash run and every AWS call made in
// it, for docs/benchmarks.md.
type measurement struct {
	began, killed, restarted, done time.Time
	// distributing is when the first CopyAMI was scheduled.
	distributing time.Time
	requests     []awsproxy.Request
}

// logMeasurements logs how long recovery took and what it cost in AWS calls:
// the calls after the restart by action, next to the same actions before the
// kill, over the whole run and over the distribute stage alone.
func logMeasurements(t *testing.T, m measurement) {
	t.Helper()
	before, distBefore, after := map[string]int{}, map[string]int{}, map[string]int{}
	var firstAfter time.Time
	for _, r := range m.requests {
		key := r.Service + " " + r.Action
		switch {
		case r.Time.Before(m.killed):
			before[key]++
			if !r.Time.Before(m.distributing) {
				distBefore[key]++
			}
		case !r.Time.Before(m.restarted):
			after[key]++
			if firstAfter.IsZero() {
				firstAfter = r.Time
			}
		}
	}
	secs := func(from, to time.Time) string { return fmt.Sprintf("%.1fs", to.Sub(from).Seconds()) }
	var b strings.Builder
	fmt.Fprintf(&b, "total run time (start to completion):      %s\n", secs(m.began, m.done))
	fmt.Fprintf(&b, "start to first copy scheduled (the bake):  %s\n", secs(m.began, m.distributing))
	fmt.Fprintf(&b, "first copy scheduled to SIGKILL:           %s\n", secs(m.distributing, m.killed))
	fmt.Fprintf(&b, "SIGKILL to first AWS call after restart:   %s\n", secs(m.killed, firstAfter))
	fmt.Fprintf(&b, "SIGKILL to run completion:                 %s\n", secs(m.killed, m.done))
	fmt.Fprintf(&b, "AWS calls before the kill: %d (distribute stage: %d); after the restart: %d\n\n",
		sum(before), sum(distBefore), sum(after))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tbefore kill (run)\tbefore kill (distribute)\tafter restart\t")
	keys := slices.Sorted(maps.Keys(after))
	for _, k := range slices.Sorted(maps.Keys(distBefore)) {
		if after[k] == 0 {
			keys = append(keys, k) // calls the restart did not repeat
		}
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", k, before[k], distBefore[k], after[k])
	}
	tw.Flush()
	t.Logf("measurements:\n%s", b.String())
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
