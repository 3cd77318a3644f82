package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkStart compares, on one embedded server, a signed webhook answered by
// kiln with the bare SDK start kiln makes inside it. Each iteration does one of
// each, alternating, so both see the same server state. Reported: p50/p99 in ms
// of each, and the ratio of their p50s.
func BenchmarkStart(b *testing.B) {
	r := newRig(b, nil)
	var hook, sdk latencies
	warm(b, r)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := r.webhook(); err != nil {
			b.Fatal(err)
		}
		hook.add(time.Since(t0))
		t1 := time.Now()
		if _, err := r.sdkStart(); err != nil {
			b.Fatal(err)
		}
		sdk.add(time.Since(t1))
	}
	b.StopTimer()
	report(b, "webhook", &hook)
	report(b, "sdk", &sdk)
	b.ReportMetric(hook.pct(0.5)/sdk.pct(0.5), "webhook/sdk-p50")
}

// BenchmarkThroughput measures sustained starts per second with 16 concurrent
// senders, for webhooks and for bare SDK starts.
func BenchmarkThroughput(b *testing.B) {
	for _, kind := range []string{"webhook", "sdk"} {
		b.Run(kind, func(b *testing.B) {
			r := newRig(b, nil)
			warm(b, r)
			start := func() error {
				if kind == "webhook" {
					_, err := r.webhook()
					return err
				}
				_, err := r.sdkStart()
				return err
			}
			b.ResetTimer()
			t0 := time.Now()
			parallel(b, 16, b.N, start)
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "starts/s")
		})
	}
}

// BenchmarkRoundTrip measures start to completion of a workflow whose only task
// returns at once, with kiln's tuned queue reader rates and with the server's
// defaults: the difference is what the tuning saves on every workflow task.
func BenchmarkRoundTrip(b *testing.B) {
	defaults := map[string]any{ // the server's own values of what kiln tunes
		"history.transferProcessorMaxPollRPS":   20,
		"history.timerProcessorMaxPollRPS":      20,
		"history.visibilityProcessorMaxPollRPS": 20,
		"history.outboundProcessorMaxPollRPS":   20,
	}
	for _, v := range []struct {
		name string
		dc   map[string]any
	}{{"tuned", nil}, {"server-defaults", defaults}} {
		b.Run(v.name, func(b *testing.B) {
			r := newRig(b, v.dc)
			warm(b, r)
			var lat latencies
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				run, err := r.sdkStart()
				if err == nil {
					err = run.Get(context.Background(), nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				lat.add(time.Since(t0))
			}
			report(b, "roundtrip", &lat)
		})
	}
}

func warm(b *testing.B, r *rig) {
	for range 20 {
		if _, err := r.webhook(); err != nil {
			b.Fatal(err)
		}
	}
}

func report(b *testing.B, name string, l *latencies) {
	b.ReportMetric(l.pct(0.5), name+"-p50-ms")
	b.ReportMetric(l.pct(0.99), name+"-p99-ms")
}

// parallel runs n calls of fn on c goroutines and fails the benchmark on the
// first error.
func parallel(b *testing.B, c, n int, fn func() error) {
	var wg sync.WaitGroup
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	errs := make(chan error, c)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
