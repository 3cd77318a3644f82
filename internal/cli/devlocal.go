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
	"github.com/kiln-ci/kiln/internal/oci"
)

// localAWS is what kiln dev's examples run against: a private moto_server
// (which this process's AWS SDK and Packer reach through the environment)
// for the AMI example, and an in-memory OCI registry for the images, with a
// busybox base image in it for the container example.
type localAWS struct {
	moto     *moto.Server
	registry *http.Server
	// Endpoint is moto's URL ("" without moto), Registry the registry's
	// host:port ("" without one).
	Endpoint, Registry string
	// BuildImage is the busybox image in the registry the container
	// example builds in; "" when it has none.
	BuildImage string
}

// localPorts are where kiln dev's local AWS and registry listen: the same
// at every start, so a config that names them (the rendered example, and
// copies of it run with kiln dev --config --local-aws) keeps working.
type localPorts struct{ aws, registry int }

// defaultLocalPorts are LocalStack's port for AWS, and the registry's
// usual port but one, since macOS takes 5000.
var defaultLocalPorts = localPorts{aws: 4566, registry: 5001}

// stablePort is port if it is free, and otherwise 0 (a free one), saying
// that a config naming the port will not reach this start's what.
func stablePort(port int, what string, log zerolog.Logger) int {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Warn().Int("port", port).Msgf("port %d is taken (another kiln dev?): %s listens on a free port this time, "+
			"and a config naming port %d will not reach it", port, what, port)
		return 0
	}
	ln.Close()
	return port
}

// Example resources kiln dev makes in moto at every start (moto keeps none).
const (
	exampleKMSAlias  = "alias/kiln-example"
	exampleKeyRegion = "us-west-2"
	exampleBucket    = "kiln-example-templates"
)

// startLocalAWS starts what the examples can use: moto when moto_server and
// packer are installed and AWS_ENDPOINT_URL is not already set (then the
// person chose their own AWS, and kiln leaves it alone), and the registry
// when the AMI example or, with containers, the container example runs. It
// returns nil, and says why in the log, when neither can run.
func startLocalAWS(ctx context.Context, log zerolog.Logger, containers bool, ports localPorts) (*localAWS, error) {
	l := &localAWS{}
	if amiExamplePossible(log) {
		m, err := moto.StartOn(ctx, nil, stablePort(ports.aws, "the local AWS (moto)", log))
		switch {
		case errors.Is(err, moto.ErrNotInstalled):
			log.Info().Msg("moto_server is not installed: the AMI example is left out (pip install 'moto[server]')")
		case err != nil:
			return nil, err
		default:
			l.moto, l.Endpoint = m, m.URL
			for _, kv := range m.Env() {
				k, v, _ := strings.Cut(kv, "=")
				os.Setenv(k, v)
			}
			if err := seedExampleAWS(ctx); err != nil {
				l.stop()
				return nil, fmt.Errorf("prepare the local AWS: %w", err)
			}
		}
	}
	if l.moto == nil && !containers {
		return nil, nil
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", stablePort(ports.registry, "the local registry", log)))
	if err != nil {
		l.stop()
		return nil, err
	}
	l.Registry = ln.Addr().String()
	l.registry = &http.Server{Handler: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))}
	go func() { _ = l.registry.Serve(ln) }()
	if containers {
		if l.BuildImage, err = pushBusybox(ctx, l.Registry); err != nil {
			log.Info().Err(err).Msg("the container example is left out")
		}
	}
	return l, nil
}

// amiExamplePossible says whether the AMI example can run, and logs why not.
func amiExamplePossible(log zerolog.Logger) bool {
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		log.Info().Msg("AWS_ENDPOINT_URL is set: the AMI example is left out, to keep away from your AWS")
		return false
	}
	if _, err := exec.LookPath("packer"); err != nil {
		log.Info().Msg("packer is not installed: the AMI example is left out (apt-get install -y packer)")
		return false
	}
	return true
}

// pushBusybox pushes an image made from this machine's busybox-static to
// the registry, for the container example to build in, and returns its tag.
func pushBusybox(ctx context.Context, registry string) (string, error) {
	tag := registry + "/kiln-examples/busybox:1"
	if _, err := oci.PushBusybox(ctx, tag); err != nil {
		return "", fmt.Errorf("the example's build image: %w", err)
	}
	return tag, nil
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
	if l.moto != nil {
		l.moto.Stop()
	}
}
