package activities

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
)

// ErrNoAMIs: retention was asked of a pipeline that bakes no AMIs.
const ErrNoAMIs = "NoAMIs"

// Place is one account and region where a pipeline's AMIs may be, with
// the role kiln reads and retires them as ("" for the worker's own).
type Place struct {
	Account string `json:"account,omitempty"` // "" for the worker's own
	Region  string `json:"region"`
	Role    string `json:"role,omitempty"`
}

func (p Place) String() string {
	account := p.Account
	if account == "" {
		account = "self"
	}
	return account + "/" + p.Region
}

// RetentionPlan is what a retention run works from: where the pipeline's
// AMIs are, and its lifecycle (nil: none configured, so nothing is
// retired unless forced to list).
type RetentionPlan struct {
	Places    []Place           `json:"places"`
	Lifecycle *config.Lifecycle `json:"lifecycle,omitempty"`
	// Parameters are the SSM parameters kiln sets in each place (by
	// Place.String): the AMIs they hold are in use.
	Parameters map[string][]string `json:"parameters,omitempty"`
}

// PlanRetention reads where a pipeline's AMIs can be from kiln.yaml: the
// worker's account in the bake region and every distribution region (a
// share target's copies stay in it), and each copy target's account in its
// regions, as its role.
func (a *Activities) PlanRetention(_ context.Context, pipeline string) (*RetentionPlan, error) {
	p, err := a.pipeline(pipeline)
	if err != nil {
		return nil, err
	}
	if p.Stages.Bake == nil {
		return nil, permanent(ErrNoAMIs, "pipeline %q bakes no AMIs", pipeline)
	}
	out := &RetentionPlan{Lifecycle: p.Lifecycle, Parameters: map[string][]string{}}
	for _, region := range p.OwnAMIRegions() {
		out.Places = append(out.Places, Place{Region: region})
	}
	if d := p.Stages.Distribute; d != nil {
		for _, t := range d.Targets {
			for _, r := range t.Regions {
				// A copy target's AMIs are in its account; a share
				// target's account launches the worker's, and holds the
				// parameter and launch templates pointing at them.
				if t.Role == "" && t.SSMParameter != "" {
					self := Place{Region: r.Region}.String() // the worker's own account holds it
					out.Parameters[self] = append(out.Parameters[self], t.SSMParameter)
				}
				if t.Role == "" || (t.Mode != config.ModeCopy && !t.Updates()) {
					continue
				}
				place := Place{Account: t.Account, Region: r.Region, Role: t.Role}
				out.Places = append(out.Places, place)
				if t.SSMParameter != "" {
					out.Parameters[place.String()] = append(out.Parameters[place.String()], t.SSMParameter)
				}
			}
		}
	}
	slices.SortFunc(out.Places, func(x, y Place) int { return strings.Compare(x.String(), y.String()) })
	return out, nil
}

// PlaceInput names a pipeline's AMIs in one place.
type PlaceInput struct {
	Pipeline string `json:"pipeline"`
	Place    Place  `json:"place"`
	// Parameters are the SSM parameters kiln sets there.
	Parameters []string `json:"parameters,omitempty"`
}

// PlaceAMIs is what one place holds: the pipeline's AMIs, and what there
// uses which AMI.
type PlaceAMIs struct {
	Images []ami.Image       `json:"images,omitempty"`
	InUse  map[string]string `json:"in_use,omitempty"`
}

// ListAMIs lists the pipeline's AMIs in one place, and what uses AMIs
// there: launch templates, instances, other pipelines' bakes built on them,
// and the SSM parameters kiln sets. A share target's place holds no AMIs
// of its own, but may use the worker's. Reading only, it is safe to retry.
func (a *Activities) ListAMIs(ctx context.Context, in PlaceInput) (*PlaceAMIs, error) {
	as := ami.Principal{Role: in.Place.Role, Session: "kiln-retention-" + in.Pipeline}
	c, err := ami.EC2(ctx, a.clients(), in.Place.Region, as)
	if err != nil {
		return nil, err
	}
	images, err := ami.List(ctx, c, in.Place.Account, in.Place.Region, in.Pipeline)
	if err != nil {
		return nil, err
	}
	used, err := ami.InUse(ctx, c, in.Place.Region)
	if err != nil {
		return nil, err
	}
	if len(in.Parameters) > 0 {
		s, err := ami.SSM(ctx, a.clients(), in.Place.Region, as)
		if err != nil {
			return nil, err
		}
		if err := ami.ParametersInUse(ctx, s, in.Place.Region, in.Parameters, used); err != nil {
			return nil, err
		}
	}
	return &PlaceAMIs{Images: images, InUse: used}, nil
}

// RetireInput is one place's share of a retention plan.
type RetireInput struct {
	Pipeline  string         `json:"pipeline"`
	Place     Place          `json:"place"`
	Decisions []ami.Decision `json:"decisions"`
	// Now is the workflow's time the plan was made at.
	Now time.Time `json:"now"`
}

// RetireAMIs takes the plan's steps in one place, in order, heartbeating
// the count done; each step is idempotent, so a retry takes them again
// safely.
func (a *Activities) RetireAMIs(ctx context.Context, in RetireInput) (int, error) {
	as := ami.Principal{Role: in.Place.Role, Session: "kiln-retention-" + in.Pipeline}
	c, err := ami.EC2(ctx, a.clients(), in.Place.Region, as)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, d := range in.Decisions {
		if d.Action == ami.ActionKeep {
			continue
		}
		if err := ami.Retire(ctx, c, d, in.Now); err != nil {
			return done, err
		}
		done++
		activity.RecordHeartbeat(ctx, done)
		a.Log.Info().Str("pipeline", in.Pipeline).Str("place", in.Place.String()).Str("ami", d.Image.ID).
			Str("action", d.Action).Str("reason", d.Reason).Msg("AMI retired")
	}
	return done, nil
}

// PolicyOf turns a lifecycle's retention for one ref into ami's terms.
func PolicyOf(l *config.Lifecycle) func(ref string) ami.Policy {
	return func(ref string) ami.Policy {
		if l == nil {
			return ami.Policy{}
		}
		r := l.For(ref)
		return ami.Policy{Keep: r.Keep, KeepFor: time.Duration(r.KeepDays) * 24 * time.Hour,
			DeprecateAfter: time.Duration(r.DeprecateAfter), DisableAfter: time.Duration(r.DisableAfter),
			DeleteAfter: time.Duration(r.DeleteAfter)}
	}
}
