package packer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// manifest is the part of a manifest post-processor's file kiln reads. The
// post-processor appends to an existing file, so only the builds of
// last_run_uuid belong to this run.
type manifest struct {
	Builds []struct {
		ArtifactID string `json:"artifact_id"`
		RunUUID    string `json:"packer_run_uuid"`
	} `json:"builds"`
	LastRunUUID string `json:"last_run_uuid"`
}

func readManifest(path string) (*manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// previousRunUUID is the manifest's last run before this build, if any: a
// manifest still naming it afterwards was not written by this build.
func previousRunUUID(o Options) string {
	if o.Manifest == "" {
		return ""
	}
	m, err := readManifest(filepath.Join(o.Dir, o.Manifest))
	if err != nil {
		return ""
	}
	return m.LastRunUUID
}

// addManifest sets res.RunUUID from the manifest this build wrote and adds
// that run's AMIs to res.Artifacts.
func addManifest(res *Result, path, prevRun string, scrub func(string) string) error {
	m, err := readManifest(path)
	if err != nil {
		return fmt.Errorf("packer: read manifest: %s", scrub(err.Error()))
	}
	if m.LastRunUUID == "" || m.LastRunUUID == prevRun {
		return fmt.Errorf("packer: manifest %s was not written by this build (is its manifest post-processor's output this path?)", filepath.Base(path))
	}
	res.RunUUID = m.LastRunUUID
	set := map[Artifact]bool{}
	for _, a := range res.Artifacts {
		set[a] = true
	}
	for _, b := range m.Builds {
		if b.RunUUID != m.LastRunUUID {
			continue
		}
		for _, p := range strings.Split(b.ArtifactID, ",") {
			if g := amiPair.FindStringSubmatch(strings.TrimSpace(p)); g != nil {
				set[Artifact{Region: g[1], AMI: g[2]}] = true
			}
		}
	}
	res.Artifacts = sortedArtifacts(set)
	return nil
}
