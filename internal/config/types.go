// Package config reads and validates kiln.yaml: the repositories kiln accepts
// webhooks from, and the pipelines their events start.
//
// A config is validated twice over: against schemas/kiln.schema.json (shape),
// then by Go code (cross references, globs, cron, durations). Every problem is
// reported with the file, line and field it concerns.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ci/kiln/internal/event"
	"gopkg.in/yaml.v3"
)

// Config is a whole kiln.yaml.
type Config struct {
	// File is the path the config was read from; errors name it.
	File string `yaml:"-" json:"-"`
	// Repos is the allowlist of repositories kiln accepts events from.
	Repos []Repo `yaml:"repos" json:"repos"`
	// Pipelines are what events start.
	Pipelines []Pipeline `yaml:"pipelines" json:"pipelines"`
	// ApproverGroups name groups of logins; a gate's approvers list
	// "@name" for all of a group's. Parse expands them.
	ApproverGroups map[string][]string `yaml:"approver_groups,omitempty" json:"approver_groups,omitempty"`
	// Artifacts is where builds keep their artifacts for every worker; nil
	// leaves them on the building worker's disk.
	Artifacts *ArtifactStore `yaml:"artifacts,omitempty" json:"artifacts,omitempty"`
}

// ArtifactStore names where artifacts go: exactly one of Dir and S3.
type ArtifactStore struct {
	// Dir is an absolute path every worker mounts.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// S3 is a bucket every worker can read and write.
	S3 *ArtifactBucket `yaml:"s3,omitempty" json:"s3,omitempty"`
}

// ArtifactBucket is an S3 bucket and key prefix for artifacts.
type ArtifactBucket struct {
	Bucket string `yaml:"bucket" json:"bucket"`
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
}

// Repo is one allowed repository.
type Repo struct {
	// Name is the repository's full name as the git host sends it in webhook
	// payloads ("owner/name").
	Name string `yaml:"name" json:"name"`
	// CloneURL is where builds clone from: https, ssh, or a local path. It
	// may not hold a password: it is in every run's history.
	CloneURL string `yaml:"clone_url" json:"clone_url"`
	// CloneAuth logs in to an http(s) CloneURL.
	CloneAuth *CloneAuth `yaml:"clone_auth,omitempty" json:"clone_auth,omitempty"`
	// WebhookSecret is the shared HMAC secret of the repository's webhook. kiln
	// refuses to start without one: an empty secret would accept unsigned payloads.
	WebhookSecret SecretRef `yaml:"webhook_secret" json:"webhook_secret"`
	// Report sets how runs of this repository are reported on its host.
	Report *Report `yaml:"report,omitempty" json:"report,omitempty"`
	// CodeCommit marks an AWS CodeCommit repository: its events arrive from
	// EventBridge at /hooks/codecommit, and review runs are reported with
	// pull-request comments.
	CodeCommit *CodeCommitRepo `yaml:"codecommit,omitempty" json:"codecommit,omitempty"`
	// Trust says whose pull requests run without an approval.
	Trust *Trust `yaml:"trust,omitempty" json:"trust,omitempty"`
}

// Trust is a repository's policy for changes from people who may not be
// trusted with the worker. Pushes and tags come from people with write
// access and are always trusted; a pull request is untrusted when it comes
// from a fork, or when its author's association is not one of
// Associations and their login not one of Logins. An untrusted run waits
// for `kiln approve` or a trusted "/kiln approve" comment before it builds.
type Trust struct {
	// Associations are the author associations trusted; default OWNER,
	// MEMBER, COLLABORATOR.
	Associations []string `yaml:"associations,omitempty" json:"associations,omitempty"`
	// Logins are trusted whatever their association, even from a fork.
	Logins []string `yaml:"logins,omitempty" json:"logins,omitempty"`
	// ApprovalTimeout is how long an untrusted run waits for approval
	// before it ends as not approved; default 72h.
	ApprovalTimeout Duration `yaml:"approval_timeout,omitempty" json:"approval_timeout,omitempty"`
}

// DefaultApprovalTimeout is how long an untrusted run waits by default.
const DefaultApprovalTimeout = 72 * time.Hour

// defaultAssociations are the author associations trusted by default.
var defaultAssociations = []string{"OWNER", "MEMBER", "COLLABORATOR"}

// Untrusted says why a run of ev needs an approval before it may build, or
// "" when it needs none.
func (r *Repo) Untrusted(ev event.Event) string {
	pr := ev.PullRequest
	if ev.Kind != event.KindReview || pr == nil {
		return ""
	}
	var t Trust
	if r.Trust != nil {
		t = *r.Trust
	}
	for _, login := range t.Logins {
		if pr.Author != "" && strings.EqualFold(login, pr.Author) {
			return ""
		}
	}
	if pr.Fork {
		return fmt.Sprintf("pull request #%d comes from a fork", pr.Number)
	}
	trusted := t.Associations
	if len(trusted) == 0 {
		trusted = defaultAssociations
	}
	if a := pr.AuthorAssociation; a != "" && !slices.ContainsFunc(trusted, func(s string) bool { return strings.EqualFold(s, a) }) {
		return fmt.Sprintf("pull request #%d is by %s, whose association with the repository is %s", pr.Number, pr.Author, a)
	}
	return ""
}

// TrustsCommenter says whether a comment by login, associated as
// association, may approve a run.
func (r *Repo) TrustsCommenter(login, association string) bool {
	var t Trust
	if r.Trust != nil {
		t = *r.Trust
	}
	if slices.ContainsFunc(t.Logins, func(s string) bool { return strings.EqualFold(s, login) }) {
		return true
	}
	trusted := t.Associations
	if len(trusted) == 0 {
		trusted = defaultAssociations
	}
	return association != "" && slices.ContainsFunc(trusted, func(s string) bool { return strings.EqualFold(s, association) })
}

// ApprovalTimeout is how long an untrusted run of the repository waits.
func (r *Repo) ApprovalTimeout() time.Duration {
	if r.Trust != nil && r.Trust.ApprovalTimeout > 0 {
		return time.Duration(r.Trust.ApprovalTimeout)
	}
	return DefaultApprovalTimeout
}

// CodeCommitRepo is an AWS CodeCommit repository's settings. Its name in
// repos is the CodeCommit repository name.
type CodeCommitRepo struct {
	// Region is the repository's region.
	Region string `yaml:"region" json:"region"`
	// Comments keeps one pull-request comment per review run, through
	// codecommit:PostCommentForPullRequest; default true.
	Comments *bool `yaml:"comments,omitempty" json:"comments,omitempty"`
}

// Report reports runs on a GitHub-compatible host (GitHub, Gitea): a commit
// status per stage and one pull-request comment per review run.
type Report struct {
	// APIURL is the host's API base; default https://api.github.com/,
	// https://gitlab.com/api/v4/ for a repository whose events come to
	// /hooks/gitlab, https://api.bitbucket.org/2.0/ for /hooks/bitbucket.
	// For Gitea: https://gitea.example.com/api/v1/.
	APIURL string `yaml:"api_url,omitempty" json:"api_url,omitempty"`
	// Token authenticates kiln; read on the worker, never logged.
	Token SecretRef `yaml:"token" json:"token"`
	// Statuses sets a commit status per stage; default true.
	Statuses *bool `yaml:"statuses,omitempty" json:"statuses,omitempty"`
	// Comment keeps one pull-request comment per review run; default true.
	Comment *bool `yaml:"comment,omitempty" json:"comment,omitempty"`
}

// CloneAuth is HTTP basic auth for fetching a private repository: a token
// as the password, as GitHub, Gitea, GitLab and Bitbucket accept. It is
// read on the worker and given to git in its environment only, never on
// its command line, in .git/config, in logs or in workflow history.
type CloneAuth struct {
	// Username defaults to x-access-token (GitHub's and Gitea's convention;
	// GitLab takes oauth2, Bitbucket x-token-auth).
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is the token.
	Password SecretRef `yaml:"password" json:"password"`
}

// User is the user name to send.
func (a *CloneAuth) User() string {
	if a.Username == "" {
		return "x-access-token"
	}
	return a.Username
}

// SecretRef says where a secret is read from. The secret itself never appears
// in kiln.yaml, in logs or in workflow history.
type SecretRef struct {
	// Env names an environment variable holding the secret.
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File is a path to a file holding the secret; surrounding white space is trimmed.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// Pipeline is one named pipeline: what starts it and what it runs.
type Pipeline struct {
	// Name identifies the pipeline in workflow IDs, the KilnPipeline search
	// attribute and `kiln run --pipeline`.
	Name string `yaml:"name" json:"name"`
	// Repo names an entry of Repos.
	Repo string `yaml:"repo" json:"repo"`
	// Triggers says which events start this pipeline.
	Triggers Triggers `yaml:"triggers" json:"triggers"`
	// CancelSuperseded, when true, makes a new run for a ref cancel the older
	// running run for the same ref. Unset means: on for review runs, off otherwise.
	CancelSuperseded *bool `yaml:"cancel_superseded,omitempty" json:"cancel_superseded,omitempty"`
	// Stages are run in order: build, bake, test, distribute, publish.
	Stages Stages `yaml:"stages" json:"stages"`
	// Notify tells people the outcome of each run.
	Notify *Notify `yaml:"notify,omitempty" json:"notify,omitempty"`
	// Lifecycle retires the pipeline's old AMIs on a schedule.
	Lifecycle *Lifecycle `yaml:"lifecycle,omitempty" json:"lifecycle,omitempty"`
}

// Notify sends a run's outcome by email and to an SNS topic. A failure to
// notify never fails the run; it shows in the run's result and the logs.
type Notify struct {
	Email *EmailNotify `yaml:"email,omitempty" json:"email,omitempty"`
	SNS   *SNSNotify   `yaml:"sns,omitempty" json:"sns,omitempty"`
	// On lists the outcomes that notify: succeeded, failed, cancelled;
	// default all three.
	On []string `yaml:"on,omitempty" json:"on,omitempty"`
}

// EmailNotify mails the outcome through SES or an SMTP server.
type EmailNotify struct {
	From string `yaml:"from" json:"from"`
	// To lists fixed recipients; the pusher or committer is added unless
	// Committer is false.
	To        []string `yaml:"to,omitempty" json:"to,omitempty"`
	Committer *bool    `yaml:"committer,omitempty" json:"committer,omitempty"`
	// Via is ses (default) or smtp.
	Via string `yaml:"via,omitempty" json:"via,omitempty"`
	// Region is SES's region; default the worker's.
	Region string      `yaml:"region,omitempty" json:"region,omitempty"`
	SMTP   *SMTPServer `yaml:"smtp,omitempty" json:"smtp,omitempty"`
}

// SMTPServer is where mail goes with via: smtp.
type SMTPServer struct {
	// Addr is host:port.
	Addr     string    `yaml:"addr" json:"addr"`
	Username string    `yaml:"username,omitempty" json:"username,omitempty"`
	Password SecretRef `yaml:"password,omitempty" json:"password,omitempty"`
	// TLS is starttls (default), tls or none.
	TLS string `yaml:"tls,omitempty" json:"tls,omitempty"`
}

// SNSNotify publishes the outcome to a topic.
type SNSNotify struct {
	TopicARN string `yaml:"topic_arn" json:"topic_arn"`
	// Region is the topic's; default the one in its ARN.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
}

// Triggers lists the events that start a pipeline. An absent trigger never fires,
// except Manual, which defaults to allowed.
type Triggers struct {
	// Review fires on pull requests opened, synchronized or reopened.
	Review *ReviewTrigger `yaml:"review,omitempty" json:"review,omitempty"`
	// Branch lists branch names or globs ("main", "release/*") whose pushes fire.
	Branch []string `yaml:"branch,omitempty" json:"branch,omitempty"`
	// Tag lists tag globs ("v*") whose pushes fire.
	Tag []string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Schedule lists cron schedules, each kept as a Temporal Schedule.
	Schedule []ScheduleTrigger `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// Manual allows on-demand runs (`kiln run`); default true.
	Manual *bool `yaml:"manual,omitempty" json:"manual,omitempty"`
	// Image lists images published by other pipelines of this config; a new
	// push of one starts this pipeline, with the image and its digest in
	// KILN_TRIGGER_IMAGE and KILN_TRIGGER_IMAGE_DIGEST.
	Image []ImageTrigger `yaml:"image,omitempty" json:"image,omitempty"`
	// AMI lists pipelines of this config whose AMIs, once they pass their
	// test on the default branch or a tag, start this pipeline; its bake
	// gets the AMI as kiln_base_ami and KILN_BASE_AMI.
	AMI []AMITrigger `yaml:"ami,omitempty" json:"ami,omitempty"`
}

// AMITrigger starts a pipeline when another pipeline's AMI passes its test.
type AMITrigger struct {
	// Pipeline bakes and tests the base AMI.
	Pipeline string `yaml:"pipeline" json:"pipeline"`
	// Ref is the branch or tag built; default HEAD, the repository's default
	// branch.
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
}

// ImageTrigger starts a pipeline when another pipeline publishes an image.
type ImageTrigger struct {
	// Name is the image repository, as the publishing pipeline names it.
	Name string `yaml:"name" json:"name"`
	// Ref is the branch or tag built; default HEAD, the repository's default
	// branch.
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
}

// ReviewTrigger fires on pull requests.
type ReviewTrigger struct {
	// Branches limits reviews to pull requests targeting these branch names or
	// globs; empty means every target branch.
	Branches []string `yaml:"branches,omitempty" json:"branches,omitempty"`
}

// ScheduleTrigger runs the pipeline on a cron schedule against a ref.
type ScheduleTrigger struct {
	// Name distinguishes schedules of one pipeline; it defaults to the ref and is
	// part of the schedule's stable ID.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Cron is a standard five-field cron expression, or a descriptor like "@daily".
	Cron string `yaml:"cron" json:"cron"`
	// Ref is the branch or tag built; its head is resolved when the run starts.
	Ref string `yaml:"ref" json:"ref"`
	// TimeZone is an IANA zone name for Cron; default UTC.
	TimeZone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
}

// Stages holds each stage's configuration. Stages run in this order, each only
// when configured: build, bake, test, distribute (and publish, later).
type Stages struct {
	// Build runs the repository's buildspec.
	Build *BuildStage `yaml:"build,omitempty" json:"build,omitempty"`
	// Bake builds an AMI with Packer.
	Bake *BakeStage `yaml:"bake,omitempty" json:"bake,omitempty"`
	// Test launches an instance from the baked AMI and tests it.
	Test *TestStage `yaml:"test,omitempty" json:"test,omitempty"`
	// Distribute copies or shares the tested AMI to accounts and regions.
	Distribute *DistributeStage `yaml:"distribute,omitempty" json:"distribute,omitempty"`
	// Publish pushes container images and uploads CloudFormation templates.
	Publish *PublishStage `yaml:"publish,omitempty" json:"publish,omitempty"`
}

// BuildStage runs the repository's CodeBuild-style buildspec.
type BuildStage struct {
	// Buildspec is a path in the repository ("buildspec.yml"), or an inline
	// buildspec mapping.
	Buildspec BuildspecSource `yaml:"buildspec" json:"buildspec"`
	// Timeout bounds the whole build; default 60m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Env adds plain environment variables to the build. Buildspec env.variables
	// override them; kiln's own KILN_* and FLOW_* variables override both.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Environment runs the build inside an image; unset runs it on the worker.
	Environment *BuildEnvironment `yaml:"environment,omitempty" json:"environment,omitempty"`
	// Secrets are environment variables the build gets from secrets read on
	// the worker, by name.
	Secrets map[string]DeclaredSecret `yaml:"secrets,omitempty" json:"secrets,omitempty"`
}

// BuildspecSource is either a path in the repository or an inline buildspec.
type BuildspecSource struct {
	// Path is set when the buildspec is a file in the repository.
	Path string `json:"path,omitempty"`
	// Inline holds the YAML text of an inline buildspec.
	Inline string `json:"inline,omitempty"`
	// Line is where the inline buildspec starts in kiln.yaml, for error messages.
	Line int `json:"line,omitempty"`
	// Block says the inline buildspec was written as a multi-line string
	// (buildspec: |), as codecommit-flow-ci's heredocs write it.
	Block bool `json:"block,omitempty"`
}

// UnmarshalYAML accepts a scalar path, an inline mapping, or an inline
// buildspec as a multi-line string: a path has no newline.
func (b *BuildspecSource) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(strings.TrimSpace(n.Value), "\n") {
		b.Inline, b.Line, b.Block = n.Value, n.Line+1, true
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		b.Path = n.Value
		return nil
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	b.Inline, b.Line = string(out), n.Line
	return nil
}

// MarshalYAML writes the buildspec back the way kiln.yaml has it: a path, or
// the inline mapping. With it, a Config marshals to a kiln.yaml that parses
// to the same Config.
func (b BuildspecSource) MarshalYAML() (any, error) {
	if b.Inline == "" {
		return b.Path, nil
	}
	if b.Block {
		return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: b.Inline}, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.Inline), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// Duration is a time.Duration written as "90s", "30m" or "2h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as kiln.yaml has it, such as "1h30m0s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// DefaultBuildTimeout bounds builds whose config names no timeout.
const DefaultBuildTimeout = 60 * time.Minute
