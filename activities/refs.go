package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
)

// RefsInput asks for what a target points at its AMI, in one account and
// region, to be pointed at it: the target's SSM parameter and launch
// template. It runs once the target's copy or share there succeeded.
type RefsInput struct {
	RunID   string `json:"run_id"`
	Account string `json:"account"`
	// Role is assumed to make the updates; empty means the worker's
	// credentials (a copy target in the worker's own account).
	Role   string `json:"role,omitempty"`
	Region string `json:"region"`
	// AMI is the target's AMI in Region: its copy, or the AMI shared with it.
	AMI            string                 `json:"ami"`
	SSMParameter   string                 `json:"ssm_parameter,omitempty"`
	LaunchTemplate *config.LaunchTemplate `json:"launch_template,omitempty"`
}

// RefsResult is what a target's account and region now point at its AMI.
type RefsResult struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	AMI     string `json:"ami"`
	// Parameter is the SSM parameter's version that holds the AMI.
	Parameter *ParameterVersion `json:"parameter,omitempty"`
	// LaunchTemplate is the launch template's version that launches it.
	LaunchTemplate *LaunchTemplateVersion `json:"launch_template,omitempty"`
}

// ParameterVersion is an SSM parameter's version.
type ParameterVersion struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// LaunchTemplateVersion is a launch template's version.
type LaunchTemplateVersion struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	// Default says the version is the template's default.
	Default bool `json:"default,omitempty"`
}

// UpdateTargetRefs points the target's SSM parameter and launch template in
// one account and region at its AMI, as the target's role. Each update is
// idempotent (see ami.PutParameter and ami.UpdateLaunchTemplate): a retry
// makes no second parameter or launch template version.
func (a *Activities) UpdateTargetRefs(ctx context.Context, in RefsInput) (*RefsResult, error) {
	res, err := a.updateTargetRefs(ctx, in)
	if err != nil {
		return nil, amiError(err)
	}
	ev := a.Log.Info().Str("run", in.RunID).Str("account", in.Account).Str("region", in.Region).Str("ami", in.AMI)
	if p := res.Parameter; p != nil {
		ev = ev.Str("parameter", p.Name).Int64("parameter_version", p.Version)
	}
	if lt := res.LaunchTemplate; lt != nil {
		ev = ev.Str("launch_template", lt.ID).Int64("launch_template_version", lt.Version).Bool("default", lt.Default)
	}
	ev.Msg("target updated")
	return res, nil
}

func (a *Activities) updateTargetRefs(ctx context.Context, in RefsInput) (*RefsResult, error) {
	what := fmt.Sprintf("point account %s in %s at %s", in.Account, in.Region, in.AMI)
	as := ami.Principal{Role: in.Role, Session: in.RunID}
	res := &RefsResult{Account: in.Account, Region: in.Region, AMI: in.AMI}
	if in.SSMParameter != "" {
		c, err := ami.SSM(ctx, a.clients(), in.Region, as)
		if err != nil {
			return nil, err
		}
		p, err := ami.PutParameter(ctx, c, in.SSMParameter, in.AMI, what)
		if err != nil {
			return nil, err
		}
		res.Parameter = &ParameterVersion{Name: p.Name, Version: p.Version}
	}
	if lt := in.LaunchTemplate; lt != nil {
		c, err := ami.EC2(ctx, a.clients(), in.Region, as)
		if err != nil {
			return nil, err
		}
		v, err := ami.UpdateLaunchTemplate(ctx, c, ami.LaunchTemplateRequest{Name: lt.Name, AMI: in.AMI,
			SetDefault: lt.SetDefault, RunID: in.RunID, Token: RefsToken(in)}, what)
		if err != nil {
			return nil, err
		}
		res.LaunchTemplate = &LaunchTemplateVersion{ID: v.ID, Name: v.Name, Version: v.Version, Default: v.Default}
	}
	return res, nil
}

// RefsToken is the ClientToken of a launch template version: the same run,
// target, template and AMI always send the same token (at most 64 ASCII
// characters, within EC2's 128).
func RefsToken(in RefsInput) string {
	name := ""
	if in.LaunchTemplate != nil {
		name = in.LaunchTemplate.Name
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{in.RunID, in.Account, in.Region, name, in.AMI}, "\x00")))
	return "kiln-" + hex.EncodeToString(sum[:])[:40]
}
