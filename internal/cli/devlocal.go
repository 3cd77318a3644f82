package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/moto"
)

// localAWS is what kiln dev's example runs its AMI pipeline against: a
// private moto_server, which this process's AWS SDK and Packer reach through
// the environment, and an in-memory OCI registry.
type localAWS struct {
	moto     *moto.Server
	registry *http.Server
	// Endpoint is moto's URL, Registry the registry's host:port.
	Endpoint, Registry string
}

// Example resources kiln dev makes in moto at every start (moto keeps none).
const (
	exampleKMSAlias  = "alias/kiln-example"
	exampleKeyRegion = "us-west-2"
	exampleBucket    = "kiln-example-templates"
)

// startLocalAWS starts moto and the registry when the example can use them:
// moto_server and packer are installed, and AWS_ENDPOINT_URL is not already
// set (then the person chose their own AWS, and kiln leaves it alone). It
// returns nil, and says why in the log, when the AMI example cannot run.
func startLocalAWS(ctx context.Context, log zerolog.Logger) (*localAWS, error) {
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		log.Info().Msg("AWS_ENDPOINT_URL is set: the AMI example is left out, to keep away from your AWS")
		return nil, nil
	}
	if _, err := exec.LookPath("packer"); err != nil {
		log.Info().Msg("packer is not installed: the AMI example is left out (apt-get install -y packer)")
		return nil, nil
	}
	m, err := moto.Start(ctx, nil)
	if errors.Is(err, moto.ErrNotInstalled) {
		log.Info().Msg("moto_server is not installed: the AMI example is left out (pip install 'moto[server]')")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l := &localAWS{moto: m, Endpoint: m.URL}
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	if err := seedExampleAWS(ctx); err != nil {
		l.stop()
		return nil, fmt.Errorf("prepare the local AWS: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.stop()
		return nil, err
	}
	l.Registry = ln.Addr().String()
	l.registry = &http.Server{Handler: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))}
	go func() { _ = l.registry.Serve(ln) }()
	return l, nil
}

// seedExampleAWS makes the KMS key the example's encrypted copies use and
// the bucket its templates go to.
func seedExampleAWS(ctx context.Context) error {
	cfg, err := awsx.Config(ctx, exampleKeyRegion)
	if err != nil {
		return err
	}
	keys := kms.NewFromConfig(cfg)
	key, err := keys.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln dev example copies")})
	if err != nil {
		return err
	}
	if _, err := keys.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(exampleKMSAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		return err
	}
	cfg.Region = "us-east-1"
	_, err = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).
		CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(exampleBucket)})
	return err
}

func (l *localAWS) stop() {
	if l == nil {
		return
	}
	if l.registry != nil {
		_ = l.registry.Close()
	}
	l.moto.Stop()
}
