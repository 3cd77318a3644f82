package cli

import (
	"os"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/worker"
)

// buildUsers gives o's host builds a user each when kiln runs as root, and
// otherwise says in one line what that leaves open.
func buildUsers(o *worker.Options, log zerolog.Logger) error {
	on, err := worker.NewBuildUsers(o)
	if err != nil {
		return err
	}
	if on {
		log.Info().Str("workspaces", o.WorkDir).Msg("host builds run as users of their own")
		return nil
	}
	log.Warn().Int("uid", os.Geteuid()).Msg("host builds run as kiln's own user, so they can read its files and processes; " +
		"run kiln as root to give each build a user of its own, or build in an image (stages.build.environment)")
	return nil
}
