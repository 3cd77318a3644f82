package activities

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// errLeavesRepo: a path named in kiln.yaml or a buildspec leads out of the
// checkout, by .. or by a symlink the repository committed.
var errLeavesRepo = errors.New("leaves the repository")

// readInRepo reads the file rel of the checkout in src. It is opened
// through an os.Root, so a committed symlink to /proc/self/environ or
// ~/.aws/credentials is refused rather than read (and, say, echoed by a
// parser's error into the run's history).
func readInRepo(src, rel string) ([]byte, error) {
	root, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%s %w (%v)", rel, errLeavesRepo, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// dirInRepo is the directory rel of the checkout in src, with symlinks
// resolved, as BuildKit will read it: it must stay inside the checkout.
func dirInRepo(src, rel string) (string, error) {
	base, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(src, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	if dir != base && !strings.HasPrefix(dir, base+string(filepath.Separator)) {
		return "", fmt.Errorf("%s %w", rel, errLeavesRepo)
	}
	return dir, nil
}
