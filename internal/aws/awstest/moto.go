// Package awstest gives tests an AWS to talk to without an account or the
// internet: moto_server on loopback for the AWS APIs, a real OCI registry
// on loopback standing in for ECR's registry endpoint, and a proxy in front
// of moto that fills in what moto lacks. Product code never imports it: it
// reaches these only through the standard AWS configuration chain
// (AWS_ENDPOINT_URL and the credentials variables), as a user points berth
// at LocalStack.
package awstest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// EnvMotoEndpoint names a moto_server already running (set by .ci/run);
// without it the first test that needs moto starts one for the process.
const EnvMotoEndpoint = "BERTH_TEST_MOTO"

// EnvRequireMoto makes a missing moto_server fail the tests instead of
// skipping them (.ci/run sets it).
const EnvRequireMoto = "BERTH_REQUIRE_MOTO"

// Region is the region the tests use.
const Region = "eu-west-1"

var moto struct {
	once     sync.Once
	endpoint string
	cmd      *exec.Cmd
	err      error
}

// MotoEndpoint returns the URL of a running moto_server, starting one on a
// free loopback port the first time it is asked (one per test process: the
// tests share it and keep apart by using names of their own). It skips the
// test when moto_server is not installed, unless BERTH_REQUIRE_MOTO is set.
func MotoEndpoint(t testing.TB) string {
	t.Helper()
	moto.once.Do(func() {
		if ep := os.Getenv(EnvMotoEndpoint); ep != "" {
			moto.endpoint, moto.err = ep, waitHTTP(ep, 10*time.Second)
			return
		}
		path, err := exec.LookPath("moto_server")
		if err != nil {
			moto.err = fmt.Errorf("moto_server not found on PATH (pip install 'moto[server]==5.2.1')")
			return
		}
		port, err := freePort()
		if err != nil {
			moto.err = err
			return
		}
		cmd := exec.Command(path, "-H", "127.0.0.1", "-p", port)
		cmd.Env = append(os.Environ(), "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			moto.err = fmt.Errorf("start moto_server: %w", err)
			return
		}
		moto.cmd = cmd
		moto.endpoint = "http://127.0.0.1:" + port
		moto.err = waitHTTP(moto.endpoint, 30*time.Second)
	})
	if moto.err != nil {
		if os.Getenv(EnvRequireMoto) != "" {
			t.Fatalf("moto: %v", moto.err)
		}
		t.Skipf("moto: %v", moto.err)
	}
	return moto.endpoint
}

// StopMoto ends the moto_server MotoEndpoint started, if it started one.
// Call it from TestMain after m.Run.
func StopMoto() {
	if moto.cmd != nil && moto.cmd.Process != nil {
		_ = moto.cmd.Process.Kill()
		_ = moto.cmd.Wait()
	}
}

// UseMoto points the standard AWS configuration chain at moto for the rest
// of the test: AWS_ENDPOINT_URL, dummy static credentials and the region.
// It uses t.Setenv, so the test cannot be parallel.
func UseMoto(t *testing.T) string {
	t.Helper()
	return UseEndpoint(t, MotoEndpoint(t))
}

// UseEndpoint is UseMoto with another endpoint (a proxy in front of moto).
func UseEndpoint(t *testing.T, endpoint string) string {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            endpoint,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return endpoint
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func waitHTTP(endpoint string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", endpoint, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
