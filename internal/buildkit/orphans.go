package buildkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunningContainers lists the IDs of the runc containers a buildkitd with
// root started that are not stopped.
func RunningContainers(root string) ([]string, error) {
	out, err := exec.Command("runc", "list", "--format", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	var list []struct{ ID, Status, Bundle string }
	if trimmed := bytes.TrimSpace(out); len(trimmed) > 0 && string(trimmed) != "null" {
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("runc list: %w", err)
		}
	}
	ours := filepath.Join(filepath.Clean(root), "runc-overlayfs", "executor") + "/"
	var ids []string
	for _, c := range list {
		if strings.HasPrefix(c.Bundle, ours) && c.Status != "stopped" {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// killOrphans kills the containers of root's buildkitd when none runs: a
// buildkitd that died with a killed kiln can leave a build's container
// running, with its processes, after it.
func killOrphans(root string) error {
	ids, err := RunningContainers(root)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if out, err := exec.Command("runc", "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete --force %s: %v: %s", id, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}
