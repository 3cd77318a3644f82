package packer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// One moto_server serves the whole package; tests use distinct AMI names.
var (
	motoOnce sync.Once
	motoURL  string
	motoCmd  *exec.Cmd
	motoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoCmd != nil {
		_ = syscall.Kill(-motoCmd.Process.Pid, syscall.SIGKILL)
		_ = motoCmd.Wait()
	}
	os.Exit(code)
}

// moto returns the URL of a running moto_server whose EC2 data is loaded.
// Missing tools fail the test: these tests are the proof the stage works.
func moto(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"packer", "moto_server"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install it (apt-get install -y packer; pip install 'moto[server]')", bin)
		}
	}
	motoOnce.Do(func() { motoURL, motoErr = startMoto() })
	if motoErr != nil {
		t.Fatalf("moto_server: %v", motoErr)
	}
	return motoURL
}

func startMoto() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	motoCmd = exec.Command("moto_server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	motoCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := motoCmd.Start(); err != nil {
		return "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not ready at %s after 30s", url)
		}
	}
	// The first EC2 request loads moto's AMI data (~2.6 s); pay it once here.
	_, err = ec2Client(url, "us-east-1").DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{})
	return url, err
}

// ec2Client is an EC2 client for region against moto.
func ec2Client(url, region string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
	})
}

// workdir copies testdata/<name> into a fresh checkout-like directory.
func workdir(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// amiName is a per-test AMI name: packer refuses duplicates without -force.
func amiName(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) +
		fmt.Sprint(time.Now().UnixNano()%1e6)
}
