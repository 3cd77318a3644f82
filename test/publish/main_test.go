// Package publish tests the publish stage end to end on real parts: the
// embedded Temporal server, a kiln worker, real git, an OCI registry run in
// process (go-containerregistry's, behind basic auth), moto for S3, SES and
// the source AMI, and a stub git host recording the commit statuses kiln
// sets. A base-image pipeline publishes an image; the app pipeline that
// names it in an image trigger starts with the new digest, bakes (reusing a
// tested AMI), and publishes its own image and a CloudFormation template
// carrying the AMI map.
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
)

const (
	regUser, regPass = "kiln", "registry-secret"
	ghToken          = "gh-secret-token"
	hookSecret       = "hook-secret"
	bucket           = "kiln-templates"
	sender           = "kiln@example.com"
)

// kilnYAML: base publishes an image; app is triggered by it, bakes (reusing
// the tested AMI the rig registers) and publishes an image and a template.
const kilnYAML = `
repos:
  - name: acme/app
    clone_url: {{.Repo}}
    webhook_secret: {env: KILN_PUBLISH_HOOK_SECRET}
    report: {api_url: {{.GitHub}}, token: {env: KILN_PUBLISH_GH_TOKEN}}
  - name: widget
    clone_url: {{.Repo}}
    webhook_secret: {env: KILN_PUBLISH_HOOK_SECRET}
    codecommit: {region: us-east-2}
pipelines:
  - name: cc-review
    repo: widget
    triggers: {review: {}}
    stages:
      build: {buildspec: base.buildspec.yml}
  - name: base
    repo: acme/app
    triggers: {manual: true}
    notify:
      email: {from: ` + sender + `, to: [ops@example.com], committer: false}
    stages:
      build: {buildspec: base.buildspec.yml}
      publish:
        images:
          - name: {{.Registry}}/acme/base
            insecure: true
            files: [{from: "dist/**", to: /opt/base}]
            env: {BASE: "1"}
            auth: {username: ` + regUser + `, password: {env: KILN_PUBLISH_REG_PASS}}
  - name: app
    repo: acme/app
    triggers:
      manual: true
      image: [{name: {{.Registry}}/acme/base}]
    stages:
      build: {buildspec: app.buildspec.yml}
      bake: {template: ami.pkr.hcl, region: us-east-1}
      publish:
        images:
          - name: {{.Registry}}/acme/app
            base: {{.Registry}}/acme/base:latest
            insecure: true
            files: [{from: "out/*", to: /srv}]
            cmd: [/srv/app.txt]
            auth: {username: ` + regUser + `, password: {env: KILN_PUBLISH_REG_PASS}}
        cloudformation: {bucket: ` + bucket + `, templates: [cfn/app.yaml], parameters_file: true}
`

var repoFiles = fstest.MapFS{
	"base.buildspec.yml": {Data: []byte(`version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist && printf 'base built at %s\n' "$KILN_COMMIT" > dist/base.txt
artifacts:
  files: ["dist/**"]
`)},
	"app.buildspec.yml": {Data: []byte(`version: 0.2
phases:
  build:
    commands:
      - mkdir -p out
      - printf '%s\n' "$KILN_EVENT" "$KILN_TRIGGER_IMAGE" "$KILN_TRIGGER_IMAGE_DIGEST" > out/app.txt
artifacts:
  files: ["out/*"]
`)},
	"ami.pkr.hcl": {Data: []byte("# never run: the rig registers a tested AMI of this commit\n")},
	"cfn/app.yaml": {Data: []byte(`AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Size: {Type: String, Default: t3.micro}
Resources:
  Host:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI]
      InstanceType: !Ref Size
Outputs:
  Id: {Value: !GetAtt Host.PrivateIp}
`)},
}

// rig is the package's shared fixture.
type rig struct {
	temporal   *testkit.Temporal
	runs       *starter.Runs
	moto       *motoserver.Server
	registry   string
	regLog     *requestLog
	github     *requestLog
	host       *fakeGitHub
	codecommit *fakeCodeCommit
	cfg        *config.Config
	head       string
	ami        string
}

var it *rig

func TestMain(m *testing.M) {
	flag.Parse() // motoserver asks testing.Verbose before m.Run would parse
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publish set-up:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	tb := &testkit.MainTB{}
	defer tb.Close()
	defer testkit.Recover(&err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &rig{regLog: &requestLog{}, github: &requestLog{}}
	r.moto = motoserver.Start(tb)
	reg := httptest.NewServer(r.regLog.wrap(basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))))))
	defer reg.Close()
	r.registry = strings.TrimPrefix(reg.URL, "http://")
	r.host = &fakeGitHub{}
	gh := httptest.NewServer(r.github.wrap(r.host))
	r.codecommit = &fakeCodeCommit{}
	cc := httptest.NewServer(r.codecommit)
	defer cc.Close()
	defer gh.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": r.moto.URL, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"KILN_PUBLISH_HOOK_SECRET": hookSecret, "KILN_PUBLISH_REG_PASS": regPass, "KILN_PUBLISH_GH_TOKEN": ghToken,
		// moto has no pull-request comments: CodeCommit calls go to a fake.
		"AWS_ENDPOINT_URL_CODECOMMIT": cc.URL,
	} {
		os.Setenv(k, v)
	}
	root, err := os.MkdirTemp("", "kiln-publish-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	if r.head, err = gitx.InitRepo(ctx, root+"/repo", repoFiles, "initial"); err != nil {
		return 0, err
	}
	if err := r.seedAWS(ctx); err != nil {
		return 0, fmt.Errorf("moto: %w", err)
	}
	var buf bytes.Buffer
	err = template.Must(template.New("kiln.yaml").Parse(kilnYAML)).Execute(&buf, map[string]string{
		"Repo": strconv.Quote(root + "/repo"), "Registry": r.registry, "GitHub": strconv.Quote(gh.URL + "/"),
	})
	if err != nil {
		return 0, err
	}
	cfg, err := config.Parse("kiln.yaml", buf.Bytes())
	if err != nil {
		return 0, err
	}
	r.cfg = cfg
	if r.temporal, err = testkit.StartTemporal(ctx); err != nil {
		return 0, err
	}
	defer r.temporal.Close()
	w := worker.New(r.temporal.Client, worker.Options{Config: cfg, DataDir: root + "/data", PackerBinary: "/bin/false",
		UIURL: "http://ui.test", Log: r.temporal.Log.Level(zerolog.WarnLevel)})
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	r.runs = &starter.Runs{Client: r.temporal.Client}
	it = r
	return m.Run(), nil
}

// seedAWS makes what the runs need in moto: the bucket, a verified sender,
// and a tested AMI of the commit, so the bake reuses it instead of running
// Packer.
func (r *rig) seedAWS(ctx context.Context) error {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(r.moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	if _, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).CreateBucket(ctx,
		&s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	if _, err := sesv2.NewFromConfig(cfg).CreateEmailIdentity(ctx,
		&sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(sender)}); err != nil {
		return err
	}
	c := ec2.NewFromConfig(cfg)
	img, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("app-" + r.head[:8])})
	if err != nil {
		return err
	}
	r.ami = aws.ToString(img.ImageId)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{r.ami}, Tags: []ec2types.Tag{
		{Key: aws.String(activities.TagPipeline), Value: aws.String("app")},
		{Key: aws.String(activities.TagCommit), Value: aws.String(r.head)},
		{Key: aws.String(activities.TagTest), Value: aws.String(activities.TestPassed)},
	}})
	return err
}

// basicAuth guards the registry as a private registry would.
func basicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != regUser || p != regPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fakeGitHub answers commit statuses and a pull request's comments as
// GitHub's API does, keeping the comments it was given.
type fakeGitHub struct {
	mu       sync.Mutex
	comments []map[string]any
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+ghToken {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	switch {
	case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/statuses/"):
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	case r.Method == http.MethodGet && r.URL.Path == "/repos/acme/app/issues/7/comments":
		_ = json.NewEncoder(w).Encode(g.comments)
	case r.Method == http.MethodPost && r.URL.Path == "/repos/acme/app/issues/7/comments":
		c := map[string]any{"id": 100 + len(g.comments), "body": body["body"]}
		g.comments = append(g.comments, c)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/repos/acme/app/issues/comments/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/repos/acme/app/issues/comments/"))
		for _, c := range g.comments {
			if int(c["id"].(int)) == id {
				c["body"] = body["body"]
				_ = json.NewEncoder(w).Encode(c)
				return
			}
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

// requestLog records the requests a handler saw, with their bodies.
type requestLog struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path string
	Body         map[string]any
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := recorded{Method: r.Method, Path: r.URL.Path}
		_ = json.Unmarshal(body, &rec.Body)
		l.mu.Lock()
		l.reqs = append(l.reqs, rec)
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (l *requestLog) all() []recorded {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]recorded(nil), l.reqs...)
}

func (l *requestLog) count(match func(recorded) bool) int {
	n := 0
	for _, r := range l.all() {
		if match(r) {
			n++
		}
	}
	return n
}
