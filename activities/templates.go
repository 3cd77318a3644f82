package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/cfn"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// ErrInvalidTemplate: a CloudFormation template cannot be read or is not
// valid YAML or JSON; the message names the file and line.
const ErrInvalidTemplate = "InvalidTemplate"

// TemplatesInput asks for the pipeline's CloudFormation templates to be
// published with an AMI map.
type TemplatesInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// AMIs maps region to AMI ID: the column of the AMI map the config's
	// cloudformation.account names, or the bake's own AMIs.
	AMIs map[string]string `json:"amis"`
}

// TemplatesResult lists the uploaded objects as s3:// URLs.
type TemplatesResult struct {
	Objects []string `json:"objects"`
}

// PublishTemplates checks out the commit, injects the AMI map into each
// template, and uploads them to s3://<bucket>/<branch or tag>/<path>.
// PutObject overwrites, so a retry uploads the same objects again.
func (a *Activities) PublishTemplates(ctx context.Context, in TemplatesInput) (*TemplatesResult, error) {
	cf := in.Plan.Publish.CloudFormation
	prefix := cfn.KeyPrefix(in.Event.Branch, in.Event.Tag, prNumber(in.Event))
	if prefix == "" {
		return nil, permanent(ErrInvalidTemplate, "the run names no branch, tag or pull request to publish the templates under")
	}
	work := a.paths("publish", safeName(in.RunID), activity.GetInfo(ctx).Attempt).Work
	defer os.RemoveAll(work)
	if err := gitx.Checkout(ctx, in.Plan.CloneURL, in.Plan.Commit, work, io.Discard); err != nil {
		if errors.Is(err, gitx.ErrNotFound) {
			return nil, permanent(ErrRefNotFound, "%v", err)
		}
		return nil, fmt.Errorf("checkout: %w", err)
	}
	var templates []cfn.Object
	for _, name := range cf.Templates {
		body, err := os.ReadFile(filepath.Join(work, filepath.FromSlash(name)))
		if err != nil {
			return nil, permanent(ErrInvalidTemplate, "template %s: %v", name, err)
		}
		templates = append(templates, cfn.Object{Key: name, Body: body})
	}
	region := cf.Region
	if region == "" {
		region = in.Plan.Bake.Region
	}
	objs, err := cfn.Render(prefix, templates, in.AMIs, cfn.Options{
		MappingName: cf.Mapping, Key: cf.Key, ParametersFile: cf.ParametersFile, ParameterName: cf.Key, Region: region,
	})
	if err != nil {
		return nil, permanent(ErrInvalidTemplate, "%v", err)
	}
	cfg, err := awsx.Config(ctx, region)
	if err != nil {
		return nil, err
	}
	// A custom endpoint (a local S3 such as moto or MinIO) has no bucket
	// subdomains; AWS itself takes virtual-hosted requests.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil })
	urls, err := cfn.Upload(ctx, client, cf.Bucket, objs)
	if err != nil {
		return nil, err
	}
	a.Log.Info().Str("run", in.RunID).Strs("objects", urls).Msg("templates published")
	return &TemplatesResult{Objects: urls}, nil
}

// TemplateAMIs picks the AMI map column the templates get: the configured
// account's, or the bake's own AMIs.
func TemplateAMIs(cf *config.CloudFormationPublish, bake map[string]string, distributed map[string]map[string]string) map[string]string {
	if cf.Account != "" {
		return distributed[cf.Account]
	}
	return bake
}

func prNumber(ev event.Event) int {
	if ev.Kind == event.KindReview && ev.PullRequest != nil {
		return ev.PullRequest.Number
	}
	return 0
}
