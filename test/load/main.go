// Command load sends signed GitHub push webhooks to kiln at a fixed rate for
// a fixed time, a share of them redeliveries, and reports how kiln answered:
// the status of every answer, its latency, and whether each delivery kiln
// accepted really started one run. It exits 1 when any answer was a 5xx,
// came later than GitHub waits (10 s), or a run is missing.
//
// By default it builds kiln, starts `kiln dev` on loopback ports with a
// temporary data dir and a one-line pipeline, loads it, checks the runs in
// Temporal, and stops it:
//
//	go run ./test/load -rate 150 -duration 30s
//
// With -url it loads a kiln that is already running (loopback only), with
// that repository's webhook secret; -temporal-address adds the check of runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Bounds keep a typo from becoming a flood.
const (
	maxRate     = 1000
	maxDuration = 5 * time.Minute
	// hostPatience is how long GitHub waits for an answer before it records
	// the delivery as failed.
	hostPatience = 10 * time.Second
)

type options struct {
	rate       int
	duration   time.Duration
	redeliver  float64
	kiln       string
	url        string
	secret     string
	repo       string
	temporal   string
	maxBuilds  int
	keepData   bool
	dataParent string
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 150, fmt.Sprintf("deliveries per second, at most %d", maxRate))
	flag.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("how long to send, at most %s", maxDuration))
	flag.Float64Var(&o.redeliver, "redeliver", 0.1, "share of deliveries that repeat an earlier delivery ID, as a host's redelivery does")
	flag.StringVar(&o.kiln, "kiln", "", "kiln binary to start; default: go build ./cmd/kiln")
	flag.StringVar(&o.url, "url", "", "load a running kiln's webhook endpoint instead (loopback only), e.g. http://127.0.0.1:8080/hooks/github")
	flag.StringVar(&o.secret, "secret", "", "with -url: the repository's webhook secret")
	flag.StringVar(&o.repo, "repo", "load/repo", "with -url: the repository full_name the pushes name")
	flag.StringVar(&o.temporal, "temporal-address", "", "with -url: the Temporal frontend, to check that accepted deliveries started runs")
	flag.IntVar(&o.maxBuilds, "max-builds", 4, "the started kiln dev's --max-builds")
	flag.BoolVar(&o.keepData, "keep", false, "keep the started kiln dev's data dir")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func (o options) check() error {
	switch {
	case o.rate < 1 || o.rate > maxRate:
		return fmt.Errorf("-rate %d: must be between 1 and %d", o.rate, maxRate)
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("-duration %s: must be more than 0 and at most %s", o.duration, maxDuration)
	case o.redeliver < 0 || o.redeliver >= 1:
		return fmt.Errorf("-redeliver %g: must be at least 0 and less than 1", o.redeliver)
	case o.url != "" && o.secret == "":
		return errors.New("-url needs -secret, the repository's webhook secret")
	}
	if o.url != "" {
		return loopbackOnly("-url", o.url)
	}
	return nil
}

// loopbackOnly refuses to send load anywhere but this machine.
func loopbackOnly(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, raw, err)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, raw, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s %q: %s is not a loopback address; load goes to this machine only", flagName, raw, ip)
		}
	}
	return nil
}

func run(ctx context.Context, o options) (int, error) {
	if err := o.check(); err != nil {
		return 0, err
	}
	target := target{url: o.url, secret: o.secret, repo: o.repo, temporal: o.temporal, pipeline: "load"}
	if o.url == "" {
		dev, err := startDev(ctx, o)
		if err != nil {
			return 0, err
		}
		defer dev.stop()
		target = dev.target
	}
	fmt.Printf("loading %s: %d deliveries/s for %s, %.0f%% redeliveries\n", target.url, o.rate, o.duration, o.redeliver*100)
	res := send(ctx, target, o)
	res.print(os.Stdout)
	ok := res.ok()
	if target.temporal != "" {
		checked, err := checkRuns(ctx, target, res)
		if err != nil {
			return 0, err
		}
		checked.print(os.Stdout)
		ok = ok && checked.ok()
	}
	if !ok {
		return 1, nil
	}
	return 0, nil
}
