package activities

import (
	"os"
	"path/filepath"
)

// defaultPath is the PATH of a build when the worker has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseEnv is all a host build or test command takes from the machine: PATH,
// to find the tools installed on it, a HOME of the pipeline's own, a TMPDIR
// of the attempt's own, and a UTF-8 locale. Nothing else of the worker's
// environment (its AWS keys, registry passwords, git-host tokens) reaches
// code from a repository; what a build needs beyond this, its pipeline
// declares.
//
// HOME lives under the data dir and outlives the attempt, so tool caches
// (go, npm, pip) carry over between runs of one pipeline, while the
// worker's own dotfiles and credential files (~/.aws, ~/.docker,
// ~/.gitconfig) are not where tools look.
func (a *Activities) baseEnv(pipeline, work string) ([]string, error) {
	home := filepath.Join(a.DataDir, "home", safeName(pipeline))
	tmp := filepath.Join(work, "tmp")
	for _, dir := range []string{home, tmp} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	return []string{"PATH=" + path, "HOME=" + home, "TMPDIR=" + tmp, "LANG=C.UTF-8"}, nil
}
