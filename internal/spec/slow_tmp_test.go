package spec

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSlowTmp(t *testing.T) {
	dir := os.Getenv("CORPUS")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		// go test fuzz v1 \n []byte("...")
		lines := string(raw)
		i := len("go test fuzz v1\n[]byte(")
		s, err := strconv.Unquote(lines[i : len(lines)-2])
		if err != nil {
			t.Logf("unquote %s: %v", f, err)
			continue
		}
		start := time.Now()
		Parse("berth.yaml", []byte(s))
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Logf("%s: %v (%d bytes)", filepath.Base(f), d, len(s))
		}
	}
}
