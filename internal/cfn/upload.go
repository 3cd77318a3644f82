package cfn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// S3API is the part of *s3.Client that Upload uses, so tests can stub it.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// CommitMetadata is the S3 user metadata key (x-amz-meta-kiln-commit)
// naming the commit an uploaded object was published from.
const CommitMetadata = "kiln-commit"

// Object is one file to publish: Key is its full S3 key, such as
// KeyPrefix(...) + "app.yaml". Commit, when set, is stored as the object's
// CommitMetadata.
type Object struct {
	Key    string
	Body   []byte
	Commit string
}

// PublishedCommit returns the commit s3://bucket/key was published from (its
// CommitMetadata); "" when the object or the metadata is missing.
func PublishedCommit(ctx context.Context, c interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}, bucket, key string) (string, error) {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", classifyS3(err, fmt.Sprintf("read s3://%s/%s", bucket, key))
	}
	return out.Metadata[CommitMetadata], nil
}

// contentTypes are what CloudFormation templates and parameter files are
// served as; anything else is opaque bytes.
var contentTypes = map[string]string{
	".json":     "application/json",
	".yaml":     "application/x-yaml",
	".yml":      "application/x-yaml",
	".template": "text/plain",
	".txt":      "text/plain",
}

// contentType picks the Content-Type for key by its extension.
func contentType(key string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(key))]; ok {
		return t
	}
	return "application/octet-stream"
}

// Upload puts each object at s3://bucket/<key> and returns their s3:// URLs
// in the order given. PutObject overwrites, so a retry after a partial upload
// writes the same bytes again and ends in the same state. On failure it
// returns the URLs uploaded so far with an error that awsx.Classify (or, for a
// missing bucket, this function) has marked retryable or not.
func Upload(ctx context.Context, c S3API, bucket string, objs []Object) ([]string, error) {
	if bucket == "" {
		return nil, &Error{Msg: "no S3 bucket to upload the templates to"}
	}
	urls := make([]string, 0, len(objs))
	for _, o := range objs {
		if o.Key == "" || strings.HasPrefix(o.Key, "/") || strings.HasSuffix(o.Key, "/") {
			return urls, &Error{Msg: fmt.Sprintf("S3 key %q must name a file and not start with /", o.Key)}
		}
		in := &s3.PutObjectInput{
			Bucket:      aws.String(bucket),
			Key:         aws.String(o.Key),
			Body:        bytes.NewReader(o.Body),
			ContentType: aws.String(contentType(o.Key)),
		}
		if o.Commit != "" {
			in.Metadata = map[string]string{CommitMetadata: o.Commit}
		}
		_, err := c.PutObject(ctx, in)
		if err != nil {
			return urls, classifyS3(err, fmt.Sprintf("upload s3://%s/%s", bucket, o.Key))
		}
		urls = append(urls, "s3://"+bucket+"/"+o.Key)
	}
	return urls, nil
}

// classifyS3 adds the S3 codes awsx does not know to its classification: a
// missing or misnamed bucket is a configuration mistake, not an outage.
func classifyS3(err error, what string) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchBucket":
			return temporal.NewNonRetryableApplicationError(
				what+": the bucket does not exist; check the bucket name in kiln.yaml",
				awsx.TypeNotFound, err)
		case "InvalidBucketName":
			return temporal.NewNonRetryableApplicationError(
				what+": the bucket name is not valid; check it in kiln.yaml",
				awsx.TypeInvalidRequest, err)
		}
	}
	return awsx.Classify(err, what)
}

// TemplateURL is the HTTPS URL CloudFormation's TemplateURL takes for an
// object that Upload put in bucket, in the bucket's region.
func TemplateURL(bucket, region, key string) string {
	u := url.URL{Scheme: "https", Host: bucket + ".s3." + region + ".amazonaws.com", Path: "/" + key}
	return u.String()
}

// ParametersFileName is the name Render gives the parameters file of region.
func ParametersFileName(region string) string {
	return "parameters-" + region + ".json"
}

// Render prepares the objects Upload publishes: each template (Key is its
// name) with the AMI map injected, under prefix, plus the parameters file for
// o.Region when o.ParametersFile is set. Templates that read the AMI from a
// parameter still get the mapping; CloudFormation ignores unused mappings.
func Render(prefix string, templates []Object, amis AMIMap, o Options) ([]Object, error) {
	out := make([]Object, 0, len(templates)+1)
	for _, t := range templates {
		body, err := Inject(t.Key, t.Body, amis, o)
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Key: prefix + t.Key, Body: body})
	}
	if o.ParametersFile {
		body, err := ParametersFile(amis, o)
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Key: prefix + ParametersFileName(o.Region), Body: body})
	}
	return out, nil
}

// KeyPrefix is the S3 folder a run's templates go to, ending in "/": the tag
// for a tag push (v1.2.3/), "pr-<n>/" for a review, else the branch (main/),
// as MozDef's CI publishes to s3://<bucket>/<branch or tag>/. Full ref names
// (refs/heads/main, refs/tags/v1) are shortened.
//
// A "/" in a branch is kept, so release/1.2 publishes to release/1.2/. That
// nests it under release/ when a branch named release also exists, but
// replacing "/" would make release/1.2 and release-1.2 share a folder and
// overwrite each other's AMIs, which is worse: git's ref rules make the
// kept-slash form distinct for distinct branches. Characters that S3 tools
// mishandle (anything but letters, digits, ".", "_", "-" and "/", e.g. "+",
// "#", spaces and non-ASCII) become "-", and empty or dot-only path segments
// are dropped. Branches, tags and reviews share one namespace, as in MozDef:
// a branch named v1.2.3 or pr-7 lands where that tag or review does.
// KeyPrefix returns "" when there is nothing to name the folder by; callers
// must treat that as an error rather than publish at the bucket's root.
func KeyPrefix(branch, tag string, pr int) string {
	var name string
	switch {
	case tag != "":
		name = strings.TrimPrefix(tag, "refs/tags/")
	case pr > 0:
		name = "pr-" + strconv.Itoa(pr)
	default:
		name = strings.TrimPrefix(branch, "refs/heads/")
	}
	var segs []string
	for _, seg := range strings.Split(name, "/") {
		seg = strings.Map(safeKeyRune, seg)
		if strings.Trim(seg, ".") == "" {
			continue // "", "." and ".." mean nothing in a path
		}
		segs = append(segs, seg)
	}
	if len(segs) == 0 {
		return ""
	}
	return strings.Join(segs, "/") + "/"
}

// safeKeyRune keeps the characters every S3 client passes through unchanged.
func safeKeyRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return r
	case r == '.', r == '_', r == '-':
		return r
	}
	return '-'
}
