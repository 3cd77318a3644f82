package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
)

// artifactStore opens kiln.yaml's artifact store. Without one, devDir (if
// set: kiln dev's <data-dir>/artifact-store) is used, and otherwise
// artifacts stay on the disk of the worker that built them. A bucket kiln
// cannot reach yet is logged, not fatal: builds without artifacts still run.
func artifactStore(ctx context.Context, cfg *config.Config, devDir string, log zerolog.Logger) (artifacts.Store, error) {
	c := cfg.Artifacts
	switch {
	case c == nil && devDir == "":
		log.Info().Msg("artifacts stay on the disk of the worker that built them, and images are built there; " +
			"set artifacts: in kiln.yaml so that any worker can publish them")
		return nil, nil
	case c == nil:
		return artifacts.Dir{Root: filepath.Clean(devDir)}, nil
	case c.Dir != "":
		return artifacts.Dir{Root: filepath.Clean(c.Dir)}, nil
	}
	awsCfg, err := awsx.Config(ctx, c.S3.Region)
	if err != nil {
		return nil, fmt.Errorf("artifacts.s3: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("artifacts.s3: no region for bucket %s: set artifacts.s3.region or AWS_REGION", c.S3.Bucket)
	}
	// A custom endpoint (moto, MinIO) has no bucket subdomains.
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = awsCfg.BaseEndpoint != nil })
	store := artifacts.S3{Client: client, Bucket: c.S3.Bucket, Prefix: c.S3.Prefix}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := client.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: &c.S3.Bucket}); err != nil {
		log.Warn().Err(awsx.Classify(err, "reach the artifact bucket")).Str("store", store.String()).
			Msg("the artifact store cannot be reached yet; builds with artifacts fail until it can")
	}
	return store, nil
}
