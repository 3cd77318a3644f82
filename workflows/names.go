package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
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

// GetVersion change IDs of the pipeline workflow.
const (
	// ChangeTargetUpdates: distribute targets update their SSM parameter and
	// launch template after their copy or share.
	ChangeTargetUpdates = "distribute-target-updates"
)

// Stage names, in the order a pipeline runs them.
const (
	// StagePlan is KilnStage of a run that failed before any stage: its
	// pipeline, commit or build image could not be resolved.
	StagePlan       = "plan"
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
		AttrRef.ValueSet(RefAttr(ev.RefLabel())),
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
// the same ID, which is how duplicates are refused. The ref is as IDRef
// writes it; the KilnRef search attribute carries it exactly.
func RunID(pipeline string, ev event.Event, unique string) string {
	return fmt.Sprintf("%s/%s/%s", pipeline, IDRef(ev.RefLabel()), unique)
}

// maxRefAttr is the longest ref label KilnRef holds as it is: Temporal
// refuses a keyword value over 2 KiB.
const maxRefAttr = 1536

// RefAttr is the KilnRef value of a ref label: the label itself, or for a
// label longer than maxRefAttr, its IDRef form, which stays one value per
// ref, so runs of a ref are still found (and superseded) by it.
func RefAttr(label string) string {
	if len(label) <= maxRefAttr {
		return label
	}
	return IDRef(label)
}

// maxIDRef is the most bytes of a ref a workflow ID holds. With a pipeline
// name (63 at most) and a delivery ID (100), an ID stays a valid file name,
// as the data dir names logs and workspaces after it.
const maxIDRef = 64

// IDRef writes a ref label as it stands in a workflow ID, which Temporal
// sends in a gRPC header and so must be printable ASCII. Printable ASCII
// stays as it is, except '%'; every other byte is percent-encoded, so
// "release/café" is "release/caf%C3%A9". A label longer than maxIDRef keeps
// its start and ends in "~" and a hash of the whole, so two long refs that
// share a start still get distinct IDs.
func IDRef(label string) string {
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c > ' ' && c < 0x7f && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	out := b.String()
	if len(out) <= maxIDRef {
		return out
	}
	sum := sha256.Sum256([]byte(label))
	suffix := "~" + hex.EncodeToString(sum[:6])
	cut := maxIDRef - len(suffix)
	// Do not split a %XX escape.
	if i := strings.LastIndexByte(out[:cut], '%'); i >= 0 && i > cut-3 {
		cut = i
	}
	return out[:cut] + suffix
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
