// Package miniotest starts a private MinIO server for tests: on a free
// loopback port, over a temporary directory, with one bucket, stopped by
// PID when the test ends.
//
// The binary is $LAKEHOUSE_MINIO, else
// ${LAKEHOUSE_TEST_CACHE:-~/.cache/lakehouse-test}/bin/minio, which
// scripts/test.sh installs (the version is pinned in DEVELOPERS.md). A test
// that needs MinIO fails, never skips, when the binary is missing.
package miniotest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the MinIO module version scripts/test.sh installs.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Credentials of the server's root user.
const (
	AccessKey = "lakehouse-test"
	SecretKey = "lakehouse-test-secret"
	Region    = "us-east-1"
)

// Server is a running MinIO.
type Server struct {
	// Endpoint is http://127.0.0.1:<port>.
	Endpoint string
	// Bucket exists when Start returns.
	Bucket string

	t    testing.TB
	bin  string
	dir  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Binary returns the MinIO binary's path, or an error saying how to
// install it.
func Binary() (string, error) {
	if p := os.Getenv("LAKEHOUSE_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("LAKEHOUSE_MINIO=%s: %v", p, err)
		}
		return p, nil
	}
	cache := os.Getenv("LAKEHOUSE_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "lakehouse-test")
	}
	p := filepath.Join(cache, "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("MinIO is not installed at %s: run scripts/test.sh, or "+
			"GOBIN=%s go install github.com/minio/minio@%s, or set LAKEHOUSE_MINIO to a minio binary",
			p, filepath.Dir(p), Version)
	}
	return p, nil
}

// Start starts a server with an empty bucket and sets the AWS environment
// (credentials, region) of the test to reach it. The server is stopped by
// PID when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), Bucket: "lakehouse"}
	s.addr = freeAddr(t)
	s.Endpoint = "http://" + s.addr
	SetEnv(t)
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &s.Bucket}); err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
	return s
}

// StartMain starts a server for a whole test binary, from TestMain
// (where parallel tests can share it: Start's t.Setenv is refused in
// them). It sets the process's AWS environment as SetEnv does. The
// caller ends it with Close; Restart is Start's only.
func StartMain() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, Bucket: "lakehouse"}
	if s.addr, err = freePort(); err != nil {
		return nil, err
	}
	s.Endpoint = "http://" + s.addr
	for k, v := range awsEnv {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &s.Bucket}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("creating bucket: %v", err)
	}
	return s, nil
}

// awsEnv points the AWS SDK's standard chain at the test credentials.
var awsEnv = map[string]string{
	"AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey, "AWS_REGION": Region,
	"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
}

// SetEnv points the AWS SDK's standard chain at the test credentials.
func SetEnv(t testing.TB) {
	for k, v := range awsEnv {
		t.Setenv(k, v)
	}
}

// Env is the environment a child process needs to reach the server.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
}

// Client is an S3 client of the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region: Region, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

func freeAddr(t testing.TB) string {
	a, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// freePort is a free 127.0.0.1:<port>.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	console, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.addr, "--console-address", console, filepath.Join(s.dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "HOME="+s.dir)
	log, err := os.Create(filepath.Join(s.dir, "minio.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %v", s.bin, err)
	}
	log.Close()
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		// The health check answers before the object layer is up
		// (XMinioServerNotInitialized): a listing needs it.
		resp, err := http.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := s.Client().ListBuckets(ctx, &s3.ListBucketsInput{})
				cancel()
				if err == nil {
					return nil
				}
			}
		}
		select {
		case <-exit:
			out, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
			s.cmd = nil
			return fmt.Errorf("minio exited at start: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stopLocked()
	return fmt.Errorf("minio did not become ready on %s within 60s", s.addr)
}

// Stop kills the server by PID and waits for it; its data stays for
// Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Close stops a server of StartMain and removes its data.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// PID is the server's process id (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}
