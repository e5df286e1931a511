package awstest

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BotocoreModel returns botocore's published API model of an AWS service
// (the JSON of data/SERVICE/VERSION/service-2.json, gzipped or not), which
// is installed with the aws CLI and moto: tests check what berth sends and
// what a fake answers against AWS's own model. It skips the test when the
// model is not installed, or fails it when BERTH_REQUIRE_MOTO is set, as
// in .ci/run.
func BotocoreModel(t testing.TB, service, version string) []byte {
	t.Helper()
	skip := func(why string) {
		if os.Getenv(EnvRequireMoto) != "" {
			t.Fatalf("botocore's %s model is needed (%s is set): %s", service, EnvRequireMoto, why)
		}
		t.Skipf("botocore's %s model is not installed (%s); install the aws CLI, or set %s to make this a failure", service, why, EnvRequireMoto)
	}
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		skip("python3 cannot import botocore: " + err.Error())
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "data", service, version)
	var r io.Reader
	if f, err := os.Open(filepath.Join(dir, "service-2.json.gz")); err == nil {
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("botocore's %s model: %v", service, err)
		}
		r = gz
	} else if f, err := os.Open(filepath.Join(dir, "service-2.json")); err == nil {
		defer f.Close()
		r = f
	} else {
		skip("no service-2.json in " + dir)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("botocore's %s model: %v", service, err)
	}
	return b
}
