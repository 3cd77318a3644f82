package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 stores blobs as objects <Prefix>sha256/<hex> in Bucket. Large blobs
// go up in parts; every part carries a SHA-256 checksum that S3 checks.
type S3 struct {
	Client transfermanager.S3APIClient
	Bucket string
	// Prefix is prepended to every key as it is ("kiln/" or "").
	Prefix string
}

func (s S3) String() string { return "s3://" + s.Bucket + "/" + s.Prefix }

func (s S3) key(d Digest) (string, error) {
	if err := d.Valid(); err != nil {
		return "", err
	}
	return s.Prefix + "sha256/" + d.hex(), nil
}

// Has asks for the object's head.
func (s S3) Has(ctx context.Context, d Digest) (bool, error) {
	key, err := s.key(d)
	if err != nil {
		return false, err
	}
	_, err = s.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Put uploads the blob, in parts when it is large. S3 writes an object
// whole or not at all, so a crash mid-upload leaves nothing to trip on.
func (s S3) Put(ctx context.Context, d Digest, body io.ReadSeeker, size int64) error {
	key, err := s.key(d)
	if err != nil {
		return err
	}
	_, err = transfermanager.New(s.Client).UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: &s.Bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmSha256,
	})
	return err
}

// Get streams the object.
func (s S3) Get(ctx context.Context, d Digest) (io.ReadCloser, error) {
	key, err := s.key(d)
	if err != nil {
		return nil, err
	}
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if notFound(err) {
		return nil, fmt.Errorf("%s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// notFound: HeadObject answers a bare 404 ("NotFound"), GetObject NoSuchKey.
func notFound(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "NotFound", "NoSuchKey":
		return true
	}
	return false
}
