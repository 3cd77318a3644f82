package cli

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/metrics"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/starter/bitbucket"
	"github.com/kiln-ci/kiln/starter/codecommit"
	"github.com/kiln-ci/kiln/starter/github"
	"github.com/kiln-ci/kiln/starter/gitlab"
	"github.com/kiln-ci/kiln/starter/intake"
)

// intakes are the webhook endpoints of kiln dev and kiln serve, by host.
// They answer 503 until install gives them a config to start runs with, so
// the HTTP server (and /healthz) can listen from the start.
type intakes map[string]*swappableHandler

func newIntakes() intakes {
	return intakes{"github": {}, "gitlab": {}, "bitbucket": {}, "codecommit": {}}
}

// hooks are the endpoints to mount, each counting its answers in m.
func (in intakes) hooks(m *metrics.Metrics) starter.Hooks {
	out := starter.Hooks{}
	for name, h := range in {
		out[name] = m.CountAnswers(name, h)
	}
	return out
}

// mux routes kiln's HTTP endpoints: the webhooks, /healthz and /metrics.
func (in intakes) mux(health *starter.Health, m *metrics.Metrics) *http.ServeMux {
	mux := starter.NewMux(in.hooks(m), health)
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// install makes every endpoint start runs of cfg's pipelines.
func (in intakes) install(cfg *config.Config, secrets map[string][]byte, runs *starter.Runs, log zerolog.Logger) {
	in["github"].set(github.NewHandler(cfg, secrets, runs, log))
	in["gitlab"].set(intake.NewHandler(gitlab.Host{}, cfg, secrets, runs, log))
	in["bitbucket"].set(intake.NewHandler(bitbucket.Host{}, cfg, secrets, runs, log))
	in["codecommit"].set(codecommit.NewHandler(cfg, secrets, runs, log))
}
