package activities

import (
	"context"

	"github.com/kiln-ci/kiln/internal/ami"
)

// ShareInput asks for an AMI of the worker's account to be shared with
// another account.
type ShareInput struct {
	RunID string `json:"run_id"`
	// Region and AMI name the image to share: the source AMI, or the
	// regional copy made for sharing in that region.
	Region  string `json:"region"`
	AMI     string `json:"ami"`
	Account string `json:"account"`
}

// ShareResult is a finished share: Account may launch AMI in Region.
type ShareResult struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	AMI     string `json:"ami"`
}

// ShareAMI gives the account launch permission on the AMI and create-volume
// permission on its snapshots. Adding a permission that exists is a no-op, so
// a retry repeats it safely.
func (a *Activities) ShareAMI(ctx context.Context, in ShareInput) (*ShareResult, error) {
	src, err := a.describeSource(ctx, SourceAMI{Region: in.Region, AMI: in.AMI})
	if err != nil {
		return nil, amiError(err)
	}
	if src.Owner != in.Account {
		if err := a.grant(ctx, in.Region, src, in.Account); err != nil {
			return nil, err
		}
	}
	a.Log.Info().Str("run", in.RunID).Str("ami", in.AMI).Str("account", in.Account).Str("region", in.Region).Msg("AMI shared")
	return &ShareResult{Account: in.Account, Region: in.Region, AMI: in.AMI}, nil
}

// grant shares the image with account, with the worker's credentials, once
// per worker for all of the account's targets.
func (a *Activities) grant(ctx context.Context, region string, src *ami.Source, account string) error {
	_, err := a.grants.Do(ctx, region+"/"+src.ID+"/"+account, func(ctx context.Context) (any, error) {
		c, err := ami.EC2(ctx, a.clients(), region, ami.Principal{})
		if err != nil {
			return nil, err
		}
		return nil, ami.Share(ctx, c, region, src, account)
	})
	return err
}
