// Package metrics is kiln's Prometheus endpoint: the Temporal SDK's own
// metrics, through its OpenTelemetry handler and OpenTelemetry's
// Prometheus exporter, and kiln's, named kiln_…, in one registry.
//
// Workflows record theirs through workflow.GetMetricsHandler, which the
// SDK silences while it replays, so a restarted worker counts nothing
// twice.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
)

// Metrics is one process's registry and what records into it.
type Metrics struct {
	registry *prometheus.Registry
	// SDK is the Temporal client's metrics handler: set it as
	// client.Options.MetricsHandler, and workflows' and activities'
	// metrics go here too.
	SDK client.MetricsHandler
	// WebhookAnswers counts the intake's answers by host and status.
	WebhookAnswers *prometheus.CounterVec
}

// New makes a registry with the Go runtime's and the process's metrics,
// the SDK's, and kiln's.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	// The SDK's timers and kiln's stage durations are in seconds, from a
	// poll's milliseconds to a bake's hour; OpenTelemetry's default
	// buckets are for milliseconds.
	seconds := sdkmetric.NewView(sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
			Boundaries: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}})
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(seconds)).Meter("kiln")
	m := &Metrics{
		registry: reg,
		// A metric that cannot be recorded is no reason to fail a run.
		SDK: opentelemetry.NewMetricsHandler(opentelemetry.MetricsHandlerOptions{Meter: meter, OnError: func(error) {},
			UseMonotonicCounters: true}),
		WebhookAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_webhook_answers_total", Help: "Webhook deliveries answered, by host and HTTP status.",
		}, []string{"host", "status"}),
	}
	reg.MustRegister(m.WebhookAnswers)
	return m, nil
}

// Handler serves the registry as Prometheus text: GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// CountAnswers wraps a host's webhook handler, counting its answers.
func (m *Metrics) CountAnswers(host string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		m.WebhookAnswers.WithLabelValues(host, strconv.Itoa(rec.status)).Inc()
	})
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
