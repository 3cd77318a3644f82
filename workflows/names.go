package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/event"
)

// TaskQueue is the queue kiln's workers poll and kiln's starters start on.
const TaskQueue = "kiln"

// DistributeTaskQueue carries the distribute stage's copies and shares,
// which mostly wait on AWS. Workers run many of them at once, apart from the
// build slots of TaskQueue. (Runs from before short-queue send their reports
// and notifications here too.)
const DistributeTaskQueue = "kiln-distribute"

// ShortTaskQueue carries the activities that take seconds: the plan, the
// query for superseded runs, reports and notifications. Neither builds nor
// copies can take its slots, so a push is planned, and can cancel the stale
// build it replaces, while every build slot is busy.
const ShortTaskQueue = "kiln-short"

// PipelineWorkflowName is the registered name of the Pipeline workflow; it is
// what the UI shows as the workflow type.
const PipelineWorkflowName = "Pipeline"

// Names of the pipeline workflow's query, signal and stages.
const (
	// QueryProgress returns a Progress: each stage with its state, start and end.
	QueryProgress = "progress"
	// SignalSuperseded tells a run that a newer run for its ref replaces it; the
	// payload is the newer run's workflow ID. A cancellation request follows.
	SignalSuperseded = "superseded"
	// UpdateRetry retries the failed targets of a distribution that waits for
	// it; it returns a RetryResult. `kiln retry RUN_ID` sends it.
	UpdateRetry = "retry"
	// QueryAMIs returns the AMIMap distributed so far: account → region → AMI.
	QueryAMIs = "amis"
)

// Stage names, in the order a pipeline runs them.
const (
	StageBuild      = "build"
	StageBake       = "bake"
	StageTest       = "test"
	StageDistribute = "distribute"
	StagePublish    = "publish"
	// StageDistributeWaiting is KilnStage while failed targets wait for
	// `kiln retry`.
	StageDistributeWaiting = "distribute: waiting for retry"
)

// Search attribute keys kiln sets on every run, so runs can be found in the Web
// UI and with `kiln runs`.
var (
	AttrPipeline = temporal.NewSearchAttributeKeyKeyword("KilnPipeline")
	AttrRepo     = temporal.NewSearchAttributeKeyKeyword("KilnRepo")
	AttrRef      = temporal.NewSearchAttributeKeyKeyword("KilnRef")
	AttrEvent    = temporal.NewSearchAttributeKeyKeyword("KilnEvent")
	AttrCommit   = temporal.NewSearchAttributeKeyKeyword("KilnCommit")
	AttrStage    = temporal.NewSearchAttributeKeyKeyword("KilnStage")
)

// SearchAttributes lists kiln's custom search attributes with their types, for
// registering them with a Temporal namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{AttrPipeline, AttrRepo, AttrRef, AttrEvent, AttrCommit, AttrStage} {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}

// StartAttributes are the search attributes a run starts with.
func StartAttributes(pipeline string, ev event.Event) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{
		AttrPipeline.ValueSet(pipeline),
		AttrRepo.ValueSet(ev.Repo),
		AttrRef.ValueSet(ev.RefLabel()),
		AttrEvent.ValueSet(string(ev.Kind)),
		AttrStage.ValueSet("queued"),
	}
	if ev.Commit != "" {
		updates = append(updates, AttrCommit.ValueSet(ev.Commit))
	}
	return temporal.NewSearchAttributes(updates...)
}

// RunID is the readable workflow ID of a run: pipeline, ref and what made it
// unique (a webhook delivery ID, "manual-<time>", or, for schedules, a prefix
// to which Temporal appends the scheduled time). A redelivered webhook maps to
// the same ID, which is how duplicates are refused.
func RunID(pipeline string, ev event.Event, unique string) string {
	return fmt.Sprintf("%s/%s/%s", pipeline, ev.RefLabel(), unique)
}

// ManualUnique is the unique part of an on-demand run's ID.
func ManualUnique(now time.Time) string {
	return "manual-" + now.UTC().Format("20060102T150405.000Z")
}

// ScheduleID is the stable ID of the Temporal Schedule for a pipeline's named
// schedule trigger. Reconciliation finds kiln's schedules by its prefix.
func ScheduleID(pipeline, name string) string {
	return SchedulePrefix + pipeline + "/" + name
}

// SchedulePrefix starts the ID of every schedule kiln manages.
const SchedulePrefix = "kiln/"

// ScheduleWorkflowID is the workflow ID prefix a schedule's runs get; Temporal
// appends the scheduled time.
func ScheduleWorkflowID(pipeline string, ev event.Event) string {
	return RunID(pipeline, ev, "schedule")
}
