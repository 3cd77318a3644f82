package testkit

import (
	"context"
	"log/slog"
	"os"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/workflows"
)

// Temporal is an embedded, in-memory Temporal server with kiln's search
// attributes, and a client of it, for tests that need the real server.
type Temporal struct {
	Server *devserver.Server
	Client client.Client
	// Log writes to stderr; the server's own logs are kept to errors.
	Log zerolog.Logger
}

// StartTemporal starts the server on a free port and dials it. Close stops both.
func StartTemporal(ctx context.Context) (*Temporal, error) {
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true}).With().Timestamp().Logger()
	srv, err := devserver.Start(ctx, devserver.Options{
		FrontendPort:     ports[0],
		SearchAttributes: workflows.SearchAttributes(),
		Log:              log.Level(zerolog.ErrorLevel),
	})
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: QuietSDKLog()})
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &Temporal{Server: srv, Client: c, Log: log}, nil
}

// Close closes the client and stops the server.
func (t *Temporal) Close() {
	t.Client.Close()
	t.Server.Stop()
}

// QuietSDKLog keeps the SDK's logs to errors, so test output stays readable.
func QuietSDKLog() sdklog.Logger {
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})
	return sdklog.NewStructuredLogger(slog.New(h))
}
