package controlplane

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge"
)

// BenchmarkHistoryEdgeErrors is the work the console's graphs add to the
// daemon every historyEvery (5 s): one read of the edge's metrics
// registry, as initEdge builds it, for the 5xx counts. The edge's request
// path does nothing more for them.
//
//	go test -run '^$' -bench HistoryEdgeErrors ./internal/controlplane/
func BenchmarkHistoryEdgeErrors(b *testing.B) {
	reg := prometheus.NewRegistry()
	require.NoError(b, reg.Register(collectors.NewGoCollector()))
	require.NoError(b, reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})))
	_, err := edge.NewMetrics(reg)
	require.NoError(b, err)
	d := &Daemon{}
	d.edgex.registry = reg
	for b.Loop() {
		_ = d.edgeErrors()
	}
}
