package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ci/kiln/test/testkit"
)

// answer is how kiln answered one delivery.
type answer struct {
	delivery   string
	redelivery bool
	status     int // 0: no answer within hostPatience
	latency    time.Duration
	retryAfter string
	err        string
}

// results are all answers of one load.
type results struct {
	rate     int
	duration time.Duration
	answers  []answer
}

// send delivers o.rate pushes a second for o.duration, open loop: each goes
// out on schedule whether or not earlier ones were answered, as a host's do.
func send(ctx context.Context, t target, o options) *results {
	n := int(float64(o.rate) * o.duration.Seconds())
	client := &http.Client{
		Timeout:   hostPatience,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0},
	}
	res := &results{rate: o.rate, duration: o.duration, answers: make([]answer, n)}
	var wg sync.WaitGroup
	var sent []string // delivery IDs sent so far, for redeliveries
	rng := rand.New(rand.NewPCG(1, 2))
	begin := time.Now()
	for i := range n {
		at := begin.Add(time.Duration(float64(i) * float64(time.Second) / float64(o.rate)))
		select {
		case <-ctx.Done():
			res.answers = res.answers[:i]
			wg.Wait()
			return res
		case <-time.After(time.Until(at)):
		}
		a := &res.answers[i]
		if len(sent) > 0 && rng.Float64() < o.redeliver {
			a.delivery, a.redelivery = sent[rng.IntN(len(sent))], true
		} else {
			a.delivery = testkit.NewDeliveryID()
			sent = append(sent, a.delivery)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deliver(client, t, a)
		}()
	}
	wg.Wait()
	return res
}

// deliver sends one push and records kiln's answer in a.
func deliver(client *http.Client, t target, a *answer) {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": strings.Repeat("0", 40), "after": t.commit,
		"head_commit": map[string]any{"id": t.commit, "message": "load"},
		"repository":  map[string]any{"full_name": t.repo, "default_branch": "main"},
		"pusher":      map[string]any{"name": "load"}, "sender": map[string]any{"login": "load"},
	})
	req, err := testkit.GitHubDelivery(t.url, t.secret, "push", a.delivery, body)
	if err != nil {
		a.err = err.Error()
		return
	}
	start := time.Now()
	resp, err := client.Do(req)
	a.latency = time.Since(start)
	if err != nil {
		a.err = err.Error()
		return
	}
	defer resp.Body.Close()
	a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		a.err = strings.TrimSpace(string(msg))
	}
}

// ok says whether every answer was in time and none a 5xx.
func (r *results) ok() bool {
	for _, a := range r.answers {
		if a.status == 0 || a.status >= 500 {
			return false
		}
	}
	return len(r.answers) > 0
}

func (r *results) print(w io.Writer) {
	byStatus := map[int]int{}
	var lat []time.Duration
	redeliveries := 0
	errs := map[string]int{}
	for _, a := range r.answers {
		byStatus[a.status]++
		if a.redelivery {
			redeliveries++
		}
		if a.status != 0 {
			lat = append(lat, a.latency)
		}
		if a.status == 0 || a.status >= 500 {
			errs[firstLine(a.err)]++
		}
	}
	fmt.Fprintf(w, "sent %d deliveries (%d redeliveries) at %d/s for %s\n", len(r.answers), redeliveries, r.rate, r.duration)
	statuses := make([]int, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	var parts []string
	for _, s := range statuses {
		name := fmt.Sprint(s)
		if s == 0 {
			name = fmt.Sprintf("no answer within %s", hostPatience)
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, byStatus[s]))
	}
	fmt.Fprintf(w, "answers: %s\n", strings.Join(parts, ", "))
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
		fmt.Fprintf(w, "latency: p50 %s, p90 %s, p99 %s, max %s\n", pct(0.5), pct(0.9), pct(0.99), pct(1))
	}
	for msg, n := range errs {
		fmt.Fprintf(w, "  %d× %s\n", n, msg)
	}
}

// deliveryID matches the delivery IDs in kiln's answers, so that answers
// that differ only in them count as one kind.
var deliveryID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = deliveryID.ReplaceAllString(s, "<delivery>")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
