package activities

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-ci/kiln/internal/buildspec"
)

// defaultPath is the PATH of a build when the worker has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hostShells is where a host build's or test's shells run: the sandbox,
// which on a root worker switches to a build user of their own, and the
// base environment.
type hostShells struct {
	Sandbox buildspec.Host
	BaseEnv []string
	// Release gives the build user back; call it once the shells ended.
	Release func()
}

// hostSandbox prepares the attempt's workspace work, with the checkout at
// src, for shells on the worker.
//
// The base environment is all a host build or test command takes from the
// machine: PATH, to find the tools installed on it, a HOME and TMPDIR that
// are not the worker's, and a UTF-8 locale. Nothing else of the worker's
// environment (its AWS keys, registry passwords, git-host tokens) reaches
// code from a repository; what a build needs beyond this, its pipeline
// declares.
//
// With BuildUsers (a root worker), the shells run as a user of their own
// that owns the workspace, with HOME inside it: that user can read neither
// the worker's process environment nor its files, nor another build's. A
// worker that cannot switch users keeps a HOME per pipeline under the data
// dir, so tool caches (go, npm, pip) carry over between runs; the worker's
// own dotfiles (~/.aws, ~/.docker, ~/.gitconfig) are still not where tools
// look.
func (a *Activities) hostSandbox(pipeline, work, src string) (*hostShells, error) {
	home := filepath.Join(a.DataDir, "home", safeName(pipeline))
	if a.BuildUsers != nil {
		home = filepath.Join(work, "home")
	}
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
	sh := &hostShells{
		Sandbox: buildspec.Host{Dir: src},
		BaseEnv: []string{"PATH=" + path, "HOME=" + home, "TMPDIR=" + tmp, "LANG=C.UTF-8"},
		Release: func() {},
	}
	if a.BuildUsers == nil {
		return sh, nil
	}
	u, err := a.BuildUsers.Acquire()
	if err != nil {
		return nil, err
	}
	if err := a.openTo(work); err == nil {
		err = u.Own(work)
	}
	if err != nil {
		u.Release()
		return nil, fmt.Errorf("give the workspace to build user %d: %w", u.UID, err)
	}
	sh.Sandbox.User, sh.Release = u.Credential(), u.Release
	return sh, nil
}

// openTo lets others pass through the directories from the work dir down
// to work's parent, and no further: each attempt's own directory belongs
// to its build user, with mode 0700.
func (a *Activities) openTo(work string) error {
	root := a.workDir()
	if rel, err := filepath.Rel(root, work); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("workspace %s is not under %s", work, root)
	}
	for d := filepath.Dir(work); ; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
		if d == root {
			return nil
		}
	}
}
