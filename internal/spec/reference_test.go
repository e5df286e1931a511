package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReferenceNamesEveryKey keeps docs/spec.md, the user contract for
// berth.yaml, in step with the decoder: every key the decoder accepts has a
// row in the section that documents its block, and no row names a key the
// decoder would refuse.
func TestReferenceNamesEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "spec.md"))
	require.NoError(t, err)
	sections := referenceSections(string(raw))
	for _, tc := range []struct {
		heading string
		keys    []string
	}{
		{"Top level", specKeys},
		{"environments.NAME", environmentKeys},
		{"services.NAME", serviceKeys},
		{"build", buildKeys},
		{"scale", scaleKeys},
		{"health", healthKeys},
		{"routes[]", routeKeys},
		{"sticky", stickyKeys},
		{"max_concurrency", concurrencyKeys},
		{"sidecars.NAME", sidecarKeys},
		{"tasks.NAME", taskKeys},
		{"edge.NAME", entrypointKeys},
		{"failover", failoverKeys},
		{"cache", edgeCacheKeys},
		{"key", cacheKeyKeys},
		{"headers", headersKeys},
		{"routes[] (of an entrypoint)", edgeRouteKeys},
	} {
		t.Run(tc.heading, func(t *testing.T) {
			rows, ok := sections[tc.heading]
			require.True(t, ok, "docs/spec.md has no section %q", tc.heading)
			assert.ElementsMatch(t, tc.keys, rows, "docs/spec.md section %q", tc.heading)
		})
	}
}

// referenceSections maps each heading of the reference to the keys its
// table rows name ("| `key` | ...").
func referenceSections(doc string) map[string][]string {
	out := map[string][]string{}
	heading := ""
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			heading = strings.TrimSpace(strings.TrimLeft(h, "#"))
			out[heading] = nil
			continue
		}
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if key, _, ok := strings.Cut(rest, "`"); ok {
				out[heading] = append(out[heading], key)
			}
		}
	}
	return out
}
