package awstest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RegistryBinary is Debian's docker-registry (the CNCF distribution
// registry, package docker-registry), the registry Registry starts.
const RegistryBinary = "/usr/bin/docker-registry"

var registry struct {
	once sync.Once
	host string
	dir  string
	cmd  *exec.Cmd
	err  error
}

// Registry returns host:port of a real OCI registry on loopback (plain
// HTTP, no authentication), starting one the first time it is asked: one
// per test process, with its storage in a temporary directory that
// StopRegistry removes. It stands in for ECR's registry endpoint, which
// moto lacks; a Proxy hands its address to berth the way ECR does. It skips
// the test when docker-registry is not installed, unless
// BERTH_REQUIRE_MOTO is set.
func Registry(t testing.TB) string {
	t.Helper()
	registry.once.Do(func() { registry.host, registry.err = startRegistry() })
	if registry.err != nil {
		if os.Getenv(EnvRequireMoto) != "" {
			t.Fatalf("registry: %v", registry.err)
		}
		t.Skipf("registry: %v", registry.err)
	}
	return registry.host
}

// StopRegistry ends the registry Registry started, if it started one, and
// removes its storage. Call it from TestMain after m.Run.
func StopRegistry() {
	if registry.cmd != nil && registry.cmd.Process != nil {
		_ = registry.cmd.Process.Kill()
		_ = registry.cmd.Wait()
	}
	if registry.dir != "" {
		_ = os.RemoveAll(registry.dir)
	}
}

// Stop ends what this package started for the process (moto_server and
// the registry). Call it from TestMain after m.Run.
func Stop() {
	StopMoto()
	StopRegistry()
}

func startRegistry() (string, error) {
	path, err := exec.LookPath(RegistryBinary)
	if err != nil {
		return "", fmt.Errorf("%s not found (apt-get install docker-registry)", RegistryBinary)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "berth-registry-")
	if err != nil {
		return "", err
	}
	registry.dir = dir
	host := "127.0.0.1:" + port
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-test-registry
`, filepath.Join(dir, "data"), host)
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.Command(path, "serve", confPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", path, err)
	}
	registry.cmd = cmd
	if err := waitURL("http://"+host+"/v2/", 30*time.Second); err != nil {
		out, _ := os.ReadFile(logFile.Name())
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return host, nil
}

// waitURL waits until url answers 200.
func waitURL(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
