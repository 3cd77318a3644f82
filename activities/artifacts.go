package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/artifacts"
)

// buildArtifacts returns the directory holding the run's build artifacts
// on this worker. A worker that built them uses its own copy when it
// matches the manifest byte for byte; any other worker fetches them from
// the artifact store first. Without a manifest (a build that stored
// nothing, or one from before the store), only the building worker's copy
// exists, and the workflow sends the publish there.
func (a *Activities) buildArtifacts(ctx context.Context, runID string, manifest artifacts.Digest) (string, error) {
	dir := a.paths("build", safeName(runID), 1).Artifacts
	if manifest == "" {
		return dir, nil
	}
	if a.Artifacts == nil {
		return "", fmt.Errorf("the build stored its artifacts in an artifact store, and this worker has none: "+
			"set the same artifacts: in every worker's kiln.yaml (manifest %s)", manifest)
	}
	unlock := a.fetching.lock(runID)
	defer unlock()
	m, err := artifacts.ReadManifest(ctx, a.Artifacts, manifest)
	if err != nil {
		return "", err
	}
	if artifacts.Matches(dir, m) {
		return dir, nil
	}
	start := time.Now()
	st, err := artifacts.Download(ctx, a.Artifacts, m, dir, nil)
	countArtifactBytes(ctx, "download", st.Moved)
	if err != nil {
		return "", err
	}
	a.Log.Info().Str("run", runID).Str("manifest", string(manifest)).Int("files", st.Files).Int64("bytes", st.Bytes).
		Dur("took", time.Since(start)).Msg("fetched the build's artifacts from the artifact store")
	return dir, nil
}

// countArtifactBytes adds to kiln_artifact_bytes{direction}.
func countArtifactBytes(ctx context.Context, direction string, n int64) {
	if n > 0 {
		activity.GetMetricsHandler(ctx).WithTags(map[string]string{"direction": direction}).Counter("kiln_artifact_bytes").Inc(n)
	}
}

// keyedMutex is a mutex per key; the zero value is ready to use.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

// lock takes key's mutex and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
