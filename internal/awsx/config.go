// Package awsx is kiln's edge to AWS: it builds SDK configs (region, retries,
// assumed roles) and turns AWS errors into Temporal errors that say whether
// retrying can help and what a person should fix.
package awsx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const (
	// MaxAttempts is how often the SDK tries one call (throttling, 5xx,
	// connection resets) inside a single activity attempt. Retries beyond
	// that belong to the activity's retry policy, which is durable.
	MaxAttempts = 5
	// MaxBackoff caps the SDK's jittered exponential backoff between tries.
	MaxBackoff = 20 * time.Second
)

// Config loads the default AWS config (environment, shared files, instance
// role) for region, with kiln's retry settings. AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> keep working, which is how tests reach moto.
func Config(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithRetryer(newRetryer),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config for %s: %w", region, err)
	}
	return cfg, nil
}

// newRetryer is the SDK's standard retryer (which knows AWS's throttling and
// transient error codes) with kiln's attempt and backoff limits.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
	})
}

// AssumeRole returns a copy of cfg whose credentials come from assuming
// roleARN with cfg's own credentials. They are cached and refreshed before
// they expire, so one config serves a long activity. sessionName is passed
// through SessionName, so any run ID is acceptable.
func AssumeRole(cfg aws.Config, roleARN, sessionName string) aws.Config {
	out := cfg.Copy()
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), roleARN,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = SessionName(sessionName) })
	out.Credentials = aws.NewCredentialsCache(provider)
	return out
}

const (
	minSessionName = 2
	maxSessionName = 64
)

var sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)

// SessionName turns runID into a valid STS role session name
// ([\w+=,.@-]{2,64}), which shows in CloudTrail as who did what. Invalid
// characters become '-'. A name that is too long keeps its start and ends in
// a hash of the whole ID, so two long run IDs sharing a prefix stay distinct.
// SessionName is idempotent.
func SessionName(runID string) string {
	name := sessionNameInvalid.ReplaceAllString(runID, "-")
	if len(name) > maxSessionName {
		sum := sha256.Sum256([]byte(runID))
		suffix := "-" + hex.EncodeToString(sum[:])[:12]
		name = name[:maxSessionName-len(suffix)] + suffix
	}
	for len(name) < minSessionName {
		name = "kiln-" + name
	}
	return name
}
