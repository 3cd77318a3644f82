package starter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// ScheduleClient is the part of the Temporal schedule client reconciliation uses.
type ScheduleClient interface {
	Create(ctx context.Context, options client.ScheduleOptions) (client.ScheduleHandle, error)
	List(ctx context.Context, options client.ScheduleListOptions) (client.ScheduleListIterator, error)
	GetHandle(ctx context.Context, scheduleID string) client.ScheduleHandle
}

// notePrefix starts the note of every schedule kiln manages. The note ends with
// a hash of the schedule's definition, so reconciliation updates a schedule only
// when kiln.yaml changed it. (The note, unlike the memo, can be updated.)
const notePrefix = "managed by kiln from kiln.yaml; edits are overwritten; spec "

// ScheduleChanges reports what a reconciliation did, by schedule ID.
type ScheduleChanges struct {
	Created, Updated, Deleted, Unchanged []string
}

// ReconcileSchedules makes Temporal's schedules match the schedule triggers in
// cfg: it creates missing ones, updates changed ones and deletes kiln schedules
// that config no longer names. Schedules kiln does not manage (IDs without the
// kiln/ prefix) are left alone.
func ReconcileSchedules(ctx context.Context, sc ScheduleClient, cfg *config.Config) (ScheduleChanges, error) {
	var ch ScheduleChanges
	want := desiredSchedules(cfg)
	have, err := listKilnSchedules(ctx, sc)
	if err != nil {
		return ch, err
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		opts := want[id]
		hash := strings.TrimPrefix(opts.Note, notePrefix)
		// The list comes from visibility, which lags behind creates and
		// deletes; describing the schedule sees it as it is now.
		h := sc.GetHandle(ctx, id)
		desc, err := h.Describe(ctx)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			if _, err := sc.Create(ctx, opts); err != nil && !isAlreadyExists(err) {
				return ch, fmt.Errorf("create schedule %s: %w", id, err)
			}
			ch.Created = append(ch.Created, id)
		case err != nil:
			return ch, fmt.Errorf("describe schedule %s: %w", id, err)
		case strings.TrimPrefix(desc.Schedule.State.Note, notePrefix) == hash:
			ch.Unchanged = append(ch.Unchanged, id)
		default:
			if err := updateSchedule(ctx, h, opts); err != nil {
				return ch, fmt.Errorf("update schedule %s: %w", id, err)
			}
			ch.Updated = append(ch.Updated, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[id]; ok {
			continue
		}
		var nf *serviceerror.NotFound
		if err := sc.GetHandle(ctx, id).Delete(ctx); err != nil && !errors.As(err, &nf) {
			return ch, fmt.Errorf("delete schedule %s: %w", id, err)
		}
		ch.Deleted = append(ch.Deleted, id)
	}
	return ch, nil
}

// desiredSchedules builds the schedule options config asks for, keyed by ID.
func desiredSchedules(cfg *config.Config) map[string]client.ScheduleOptions {
	out := map[string]client.ScheduleOptions{}
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		for _, s := range p.Triggers.Schedule {
			out[workflows.ScheduleID(p.Name, s.Name)] = scheduleOptions(p, s)
		}
		if p.Lifecycle != nil {
			out[workflows.RetentionScheduleID(p.Name)] = retentionSchedule(p)
		}
	}
	return out
}

// retentionSchedule runs the pipeline's retention on its lifecycle's
// schedule; a run still going when the next is due makes that one skip.
func retentionSchedule(p *config.Pipeline) client.ScheduleOptions {
	spec := client.ScheduleSpec{CronExpressions: []string{p.Lifecycle.ScheduleOrDefault()}}
	in := workflows.RetentionInput{Pipeline: p.Name, RetryWindow: workflows.RetentionRetryWindow}
	return client.ScheduleOptions{
		ID:   workflows.RetentionScheduleID(p.Name),
		Spec: spec,
		Action: &client.ScheduleWorkflowAction{
			ID:        workflows.RetentionWorkflowID(p.Name),
			Workflow:  workflows.RetentionWorkflowName,
			Args:      []any{in},
			TaskQueue: workflows.TaskQueue,
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    notePrefix + noteHash(spec, in),
	}
}

// noteHash fingerprints a schedule's definition, so an unchanged one is
// left alone.
func noteHash(spec client.ScheduleSpec, input any) string {
	def, _ := json.Marshal(struct {
		Spec  client.ScheduleSpec
		Input any
	}{spec, input})
	sum := sha256.Sum256(def)
	return hex.EncodeToString(sum[:16])
}

func scheduleOptions(p *config.Pipeline, s config.ScheduleTrigger) client.ScheduleOptions {
	ev := event.Event{Kind: event.KindSchedule, Repo: p.Repo, Schedule: s.Name}
	ev.FromRef(s.Ref)
	id := workflows.ScheduleID(p.Name, s.Name)
	spec := client.ScheduleSpec{CronExpressions: []string{s.Cron}, TimeZoneName: s.TimeZone}
	action := &client.ScheduleWorkflowAction{
		ID:                    workflows.ScheduleWorkflowID(p.Name, ev),
		Workflow:              workflows.PipelineWorkflowName,
		Args:                  []any{workflows.PipelineInput{Pipeline: p.Name, Event: ev}},
		TaskQueue:             workflows.TaskQueue,
		TypedSearchAttributes: workflows.StartAttributes(p.Name, ev),
	}
	return client.ScheduleOptions{
		ID:      id,
		Spec:    spec,
		Action:  action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    notePrefix + noteHash(spec, workflows.PipelineInput{Pipeline: p.Name, Event: ev}),
	}
}

// listKilnSchedules returns the IDs of kiln's schedules. The list comes from
// visibility and may lag; it only serves to find schedules config dropped.
func listKilnSchedules(ctx context.Context, sc ScheduleClient) (map[string]bool, error) {
	it, err := sc.List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := map[string]bool{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if !strings.HasPrefix(e.ID, workflows.SchedulePrefix) {
			continue
		}
		out[e.ID] = true
	}
	return out, nil
}

func updateSchedule(ctx context.Context, h client.ScheduleHandle, opts client.ScheduleOptions) error {
	return h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &opts.Spec
			s.Action = opts.Action
			s.Policy.Overlap = opts.Overlap
			s.State.Note = opts.Note
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}

func isAlreadyExists(err error) bool {
	return errors.Is(err, temporal.ErrScheduleAlreadyRunning)
}
