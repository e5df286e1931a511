package cli

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// A daemon that dies in the middle of a deploy (here: the connection is
// cut after the switch was announced) leaves the outcome unknown: the CLI
// says so and how to find out, instead of a bare connection error.
func TestDeployLostConnectionSaysOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, verb := range []string{"deploy", "rollback"} {
		t.Run(verb, func(t *testing.T) {
			d := newFakeDaemon(t)
			spec := writeSpec(t, shopSpec)
			cut := func(w http.ResponseWriter, r *http.Request) {
				send(w, api.Message{Kind: api.KindPhase, Phase: "switch", Text: "web: all traffic on revision 4"})
				conn, _, err := http.NewResponseController(w).Hijack()
				require.NoError(t, err)
				conn.Close() // as a kill -9 of the daemon would
			}
			d.handle("POST /v1/deploy", cut)
			d.handle("POST /v1/apps/shop/services/web/rollback", cut)
			args := []string{"deploy", "-f", spec} // its one service is named
			if verb == "rollback" {
				args = []string{"rollback", "-f", spec, "web"}
			}
			res := d.run(args...)
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.stderr, "lost the connection to berth server during the "+verb)
			assert.Contains(t, res.stderr, "the outcome is unknown: run `berth status` or `berth revisions web`")
		})
	}
}

// A daemon that cannot be reached never began the deploy: that is said as
// before.
func TestDeployUnreachableIsNotUnknown(t *testing.T) {
	t.Parallel()
	spec := writeSpec(t, shopSpec)
	res := berth(t, "--host", "unix:///nonexistent/berth.sock", "deploy", "-f", spec)
	assert.Equal(t, 1, res.code)
	assert.NotContains(t, res.stderr, "outcome is unknown")
	assert.Contains(t, res.stderr, "cannot reach the berth daemon")
}
