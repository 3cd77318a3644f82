package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// temporalFlags are the connection settings every client command shares. Each
// flag defaults to its TEMPORAL_* environment variable.
type temporalFlags struct {
	address, namespace                 string
	tlsCert, tlsKey, tlsCA, serverName string
	tls                                bool
	// apiKeyFile holds a Temporal Cloud API key; TEMPORAL_API_KEY gives
	// one directly. A key is never a flag's value, which ps shows.
	apiKeyFile string
	// metrics, when set, receives the SDK's metrics.
	metrics client.MetricsHandler
}

func (t *temporalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.address, "temporal-address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&t.namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.BoolVar(&t.tls, "tls", os.Getenv("TEMPORAL_TLS") == "true", "use TLS with the system roots (env TEMPORAL_TLS=true)")
	fs.StringVar(&t.tlsCert, "tls-cert", os.Getenv("TEMPORAL_TLS_CERT"), "client certificate for mTLS (env TEMPORAL_TLS_CERT)")
	fs.StringVar(&t.tlsKey, "tls-key", os.Getenv("TEMPORAL_TLS_KEY"), "client key for mTLS (env TEMPORAL_TLS_KEY)")
	fs.StringVar(&t.tlsCA, "tls-ca", os.Getenv("TEMPORAL_TLS_CA"), "CA bundle to verify the server (env TEMPORAL_TLS_CA)")
	fs.StringVar(&t.serverName, "tls-server-name", os.Getenv("TEMPORAL_TLS_SERVER_NAME"), "server name to verify (env TEMPORAL_TLS_SERVER_NAME)")
	fs.StringVar(&t.apiKeyFile, "api-key-file", os.Getenv("TEMPORAL_API_KEY_FILE"), "file holding a Temporal Cloud API key, which implies --tls (env TEMPORAL_API_KEY_FILE, or the key itself in TEMPORAL_API_KEY)")
}

// dial connects to Temporal. Lazy dial is avoided so a wrong address fails here,
// with the address in the message.
func (t *temporalFlags) dial(log zerolog.Logger) (client.Client, error) {
	opts, err := t.options(log)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %s): %w\n"+
			"is kiln dev running? Point kiln elsewhere with --temporal-address or TEMPORAL_ADDRESS", t.address, t.namespace, err)
	}
	return c, nil
}

// options are the client's: address, namespace, TLS and, for Temporal
// Cloud, an API key (which needs TLS, so a key turns it on).
func (t *temporalFlags) options(log zerolog.Logger) (client.Options, error) {
	key, err := t.apiKey()
	if err != nil {
		return client.Options{}, err
	}
	if key != "" {
		t.tls = true
	}
	tlsConf, err := t.tlsConfig()
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:          t.address,
		Namespace:         t.namespace,
		Logger:            sdkLogger(log),
		MetricsHandler:    t.metrics,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConf},
	}
	if key != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	return opts, nil
}

// apiKey is the Temporal Cloud API key from --api-key-file or
// TEMPORAL_API_KEY; "" for none.
func (t *temporalFlags) apiKey() (string, error) {
	if t.apiKeyFile == "" {
		return strings.TrimSpace(os.Getenv("TEMPORAL_API_KEY")), nil
	}
	b, err := os.ReadFile(t.apiKeyFile)
	if err != nil {
		return "", fmt.Errorf("API key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("API key file %s is empty", t.apiKeyFile)
	}
	return key, nil
}

func (t *temporalFlags) tlsConfig() (*tls.Config, error) {
	if !t.tls && t.tlsCert == "" && t.tlsCA == "" {
		return nil, nil
	}
	conf := &tls.Config{ServerName: t.serverName, MinVersion: tls.VersionTLS12}
	if (t.tlsCert == "") != (t.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if t.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(t.tlsCert, t.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if t.tlsCA != "" {
		pem, err := os.ReadFile(t.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificates", t.tlsCA)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// sdkQuiet silences the SDK once kiln is stopping on purpose: the worker's
// interrupted heartbeats and polls then log "context canceled" errors that
// look like a crash and are not one.
var sdkQuiet atomic.Bool

// sdkLogger sends the Temporal SDK's logs through zerolog; the SDK is chatty at
// info, so it logs at warn and above unless KILN_LOG_LEVEL asks for debug.
func sdkLogger(log zerolog.Logger) sdklog.Logger {
	z := log.With().Str("component", "temporal-sdk").Logger().Hook(zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
		if sdkQuiet.Load() {
			e.Discard()
		}
	}))
	if z.GetLevel() > zerolog.DebugLevel {
		z = z.Level(max(z.GetLevel(), zerolog.WarnLevel))
	}
	return sdklog.NewStructuredLogger(slog.New(sdkHandler{zerolog.NewSlogHandler(z)}))
}

// sdkHandler leaves out the SDK's "Activity error." for a failure kiln
// classified as permanent: the failed stage ends the run, which the run's
// "pipeline failed" line says, and the activity's own line says why, so the
// SDK's would be a third copy. Failures that will be retried keep it: each
// attempt's is news.
type sdkHandler struct{ slog.Handler }

func (h sdkHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "Activity error." {
		permanent := false
		r.Attrs(func(a slog.Attr) bool {
			var app *temporal.ApplicationError
			if err, ok := a.Value.Any().(error); ok && errors.As(err, &app) && app.NonRetryable() {
				permanent = true
			}
			return !permanent
		})
		if permanent {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h sdkHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sdkHandler{h.Handler.WithAttrs(attrs)}
}

func (h sdkHandler) WithGroup(name string) slog.Handler { return sdkHandler{h.Handler.WithGroup(name)} }
