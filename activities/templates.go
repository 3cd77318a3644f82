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
	// Stale says nothing was uploaded: the branch had moved past the
	// run's commit, and its newer head had published its templates (or the
	// branch is gone).
	Stale bool `json:"stale,omitempty"`
}

// PublishTemplates checks out the commit, injects the AMI map into each
// template, and uploads them to s3://<bucket>/<branch or tag>/<path>.
// PutObject overwrites, so a retry uploads the same objects again. Each
// object records its commit (x-amz-meta-kiln-commit). A branch run whose
// branch has moved past its commit uploads nothing once the newer head's
// templates are there: they are not rolled back.
func (a *Activities) PublishTemplates(ctx context.Context, in TemplatesInput) (*TemplatesResult, error) {
	cf := in.Plan.Publish.CloudFormation
	prefix := cfn.KeyPrefix(in.Event.Branch, in.Event.Tag, prNumber(in.Event))
	if prefix == "" {
		return nil, permanent(ErrInvalidTemplate, "the run names no branch, tag or pull request to publish the templates under")
	}
	head, moved, err := branchHead(ctx, in.Plan, in.Event)
	if err != nil {
		return nil, err
	}
	work := a.paths("publish", safeName(in.RunID), activity.GetInfo(ctx).Attempt).Work
	defer os.RemoveAll(work)
	if err := checkout(ctx, in.Plan, work, io.Discard); err != nil {
		return nil, err
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
	for i := range objs {
		objs[i].Commit = in.Plan.Commit
	}
	cfg, err := awsx.Config(ctx, region)
	if err != nil {
		return nil, err
	}
	// A custom endpoint (a local S3 such as moto or MinIO) has no bucket
	// subdomains; AWS itself takes virtual-hosted requests.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil })
	if moved {
		// The branch moved on: upload unless its head has published already.
		published := ""
		if head != "" {
			if published, err = cfn.PublishedCommit(ctx, client, cf.Bucket, objs[0].Key); err != nil {
				return nil, err
			}
		}
		if head == "" || published == head {
			a.Log.Warn().Str("run", in.RunID).Str("ref", in.Event.Ref).Str("commit", in.Plan.Commit).Str("head", head).
				Str("prefix", prefix).Msg("templates not published: the branch's newer head has published them (or the branch is gone)")
			return &TemplatesResult{Stale: true}, nil
		}
	}
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

// branchHead returns, for a branch run (a push, or a manual, scheduled or
// image-triggered run of a branch), the commit its branch points at on the
// remote now, and whether that is no longer the run's commit: a newer
// commit is the head ("" when the branch is gone). Such a run must not move
// what follows the branch (latest, the branch's tag, the templates under its
// prefix) once the newer head has published them, or a run retried a day
// late would roll them back. A remote that cannot be reached is a transient
// error.
func branchHead(ctx context.Context, plan Plan, ev event.Event) (head string, moved bool, err error) {
	if ev.Kind == event.KindReview || ev.Tag != "" || ev.Branch == "" {
		return "", false, nil
	}
	remote, err := plan.Remote()
	if err != nil {
		return "", false, err
	}
	head, err = gitx.ResolveRef(ctx, remote, "refs/heads/"+ev.Branch)
	switch {
	case errors.Is(err, gitx.ErrNotFound):
		return "", true, nil
	case err != nil:
		return "", false, fmt.Errorf("check the head of branch %s: %w", ev.Branch, err)
	}
	return head, head != plan.Commit, nil
}

func prNumber(ev event.Event) int {
	if ev.Kind == event.KindReview && ev.PullRequest != nil {
		return ev.PullRequest.Number
	}
	return 0
}
