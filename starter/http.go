package starter

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
)

// Health tracks which parts of a kiln process are ready. /healthz answers 200
// only when every registered part is.
type Health struct {
	mu    sync.Mutex
	parts map[string]bool
}

// NewHealth registers the named parts, all not ready yet.
func NewHealth(parts ...string) *Health {
	h := &Health{parts: map[string]bool{}}
	for _, p := range parts {
		h.parts[p] = false
	}
	return h
}

// Ready marks a part ready.
func (h *Health) Ready(part string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parts[part] = true
}

// ServeHTTP answers 200 with {"status":"ok"} when all parts are ready, and 503
// naming the parts still starting otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	var waiting []string
	for p, ok := range h.parts {
		if !ok {
			waiting = append(waiting, p)
		}
	}
	h.mu.Unlock()
	sort.Strings(waiting)
	w.Header().Set("Content-Type", "application/json")
	if len(waiting) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "starting", "waiting_for": waiting})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// Hooks are kiln's webhook endpoints by host name; NewMux mounts each at
// /hooks/<name>.
type Hooks map[string]http.Handler

// NewMux routes kiln's HTTP endpoints: POST /hooks/<host> for each of hooks
// (every method reaches the handler, which answers others with its own
// JSON 405), and GET /healthz.
func NewMux(hooks Hooks, health *Health) *http.ServeMux {
	mux := http.NewServeMux()
	for name, h := range hooks {
		mux.Handle("/hooks/"+name, h)
	}
	mux.Handle("GET /healthz", health)
	return mux
}
