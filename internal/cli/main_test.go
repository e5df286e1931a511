package cli

import (
	"fmt"
	"os"
	"testing"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/supervisor"
)

// TestMain refuses to run as berth's daemon. A test that runs `berth server`
// through Main without stubbing supervise makes the real supervisor start
// os.Executable() (this test binary) as its daemon, which would run every
// test again, each starting another: a chain of test binaries instead of a
// failure. Exiting at once makes that test fail on its first start.
func TestMain(m *testing.M) {
	if os.Getenv(supervisor.ChildEnv) != "" || os.Getenv(supervisor.UpgradeEnv) != "" {
		fmt.Fprintln(os.Stderr, "cli.test was started as berth's daemon: stub supervise in the test that runs `berth server`")
		os.Exit(3)
	}
	code := m.Run()
	awstest.Stop() // the moto_server and registry the AWS tests started
	os.Exit(code)
}
