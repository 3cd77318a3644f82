package artifacts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// stores gives each test a directory store and an S3 store on moto.
func stores(t *testing.T) map[string]func(t *testing.T) (artifacts.Store, func(d artifacts.Digest, body []byte)) {
	moto := motoserver.Start(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := awsx.Config(context.Background(), "us-east-1")
	require.NoError(t, err)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	_, err = client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("artifacts")})
	require.NoError(t, err)
	n := 0
	return map[string]func(t *testing.T) (artifacts.Store, func(artifacts.Digest, []byte)){
		"dir": func(t *testing.T) (artifacts.Store, func(artifacts.Digest, []byte)) {
			root := t.TempDir()
			return artifacts.Dir{Root: root}, func(d artifacts.Digest, body []byte) {
				name := filepath.Join(root, "sha256", strings.TrimPrefix(string(d), "sha256:"))
				require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
				require.NoError(t, os.WriteFile(name, body, 0o644))
			}
		},
		"s3": func(t *testing.T) (artifacts.Store, func(artifacts.Digest, []byte)) {
			n++
			prefix := "run" + string(rune('a'+n)) + "/"
			return artifacts.S3{Client: client, Bucket: "artifacts", Prefix: prefix}, func(d artifacts.Digest, body []byte) {
				_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("artifacts"),
					Key: aws.String(prefix + "sha256/" + strings.TrimPrefix(string(d), "sha256:")), Body: bytes.NewReader(body)})
				require.NoError(t, err)
			}
		},
	}
}

// tree writes files (path → content) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for p, body := range files {
		name := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
		require.NoError(t, os.WriteFile(name, []byte(body), 0o644))
	}
	return dir
}

func digest(body []byte) artifacts.Digest {
	sum := sha256.Sum256(body)
	return artifacts.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

func TestStores(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("RoundTrip", func(t *testing.T) {
				s, _ := open(t)
				big := make([]byte, 20<<20) // above the multipart threshold
				_, _ = rand.Read(big)
				src := tree(t, map[string]string{"dist/app.tar": "app", "dist/same.txt": "app", "run.sh": "#!/bin/sh\n", "dist/big.bin": string(big)})
				require.NoError(t, os.Chmod(filepath.Join(src, "run.sh"), 0o755))
				paths := []string{"run.sh", "dist/app.tar", "dist/same.txt", "dist/big.bin"}
				var seen int64
				d, st, err := artifacts.Upload(ctx, s, src, paths, func(n int64) { seen = n })
				require.NoError(t, err)
				assert.Equal(t, 4, st.Files)
				assert.Equal(t, int64(len(big)+3+3+10), st.Bytes)
				assert.Equal(t, int64(len(big)+3+10), st.Moved, "the second copy of the same bytes is not sent again")
				assert.Equal(t, st.Moved, seen)

				again, st2, err := artifacts.Upload(ctx, s, src, paths, nil)
				require.NoError(t, err)
				assert.Equal(t, d, again, "the same files make the same manifest")
				assert.Zero(t, st2.Moved, "a retried upload sends nothing")

				m, err := artifacts.ReadManifest(ctx, s, d)
				require.NoError(t, err)
				assert.True(t, artifacts.Matches(src, m))
				dst := filepath.Join(t.TempDir(), "artifacts", "run-1")
				_, err = artifacts.Download(ctx, s, m, dst, nil)
				require.NoError(t, err)
				for _, p := range paths {
					want, _ := os.ReadFile(filepath.Join(src, p))
					got, err := os.ReadFile(filepath.Join(dst, p))
					require.NoError(t, err)
					assert.True(t, bytes.Equal(want, got), p)
				}
				info, err := os.Stat(filepath.Join(dst, "run.sh"))
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o755), info.Mode().Perm(), "modes survive")
				leftovers, _ := filepath.Glob(dst + ".partial-*")
				assert.Empty(t, leftovers)

				require.NoError(t, os.WriteFile(filepath.Join(src, "dist/app.tar"), []byte("changed"), 0o644))
				assert.False(t, artifacts.Matches(src, m), "a changed file no longer matches")
			})
			t.Run("TamperedBlobIsRefused", func(t *testing.T) {
				s, overwrite := open(t)
				src := tree(t, map[string]string{"a.txt": "good bytes"})
				d, _, err := artifacts.Upload(ctx, s, src, []string{"a.txt"}, nil)
				require.NoError(t, err)
				m, err := artifacts.ReadManifest(ctx, s, d)
				require.NoError(t, err)
				overwrite(m.Files[0].Digest, []byte("evil bytes"))
				dst := filepath.Join(t.TempDir(), "out")
				_, err = artifacts.Download(ctx, s, m, dst, nil)
				require.ErrorContains(t, err, "artifact a.txt")
				assert.NoDirExists(t, dst, "nothing half-checked is left in place")
			})
			t.Run("ManifestCannotEscape", func(t *testing.T) {
				s, overwrite := open(t)
				body, _ := json.Marshal(artifacts.Manifest{Files: []artifacts.File{{Path: "../../etc/passwd", Digest: digest([]byte("x")), Size: 1}}})
				overwrite(digest(body), body)
				_, err := artifacts.ReadManifest(ctx, s, digest(body))
				require.ErrorContains(t, err, `"../../etc/passwd" is not a clean relative path`)
			})
			t.Run("MissingBlob", func(t *testing.T) {
				s, _ := open(t)
				_, err := artifacts.ReadManifest(ctx, s, digest([]byte("never stored")))
				require.ErrorIs(t, err, artifacts.ErrNotFound)
				_, err = artifacts.ReadManifest(ctx, s, "sha256:../../x")
				require.ErrorContains(t, err, "is not an artifact digest")
			})
		})
	}
}
