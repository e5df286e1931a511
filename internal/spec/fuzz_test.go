package spec

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse feeds Parse arbitrary bytes, seeded with every testdata spec.
// Parse must never panic; a rejection must be a one-line *Error; an
// acceptance must be a spec that validates again and is self-consistent.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, file := range specFiles(f, dir) {
			data, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(goldenName, data)
		if err != nil {
			var perr *Error
			require.True(t, errors.As(err, &perr), "error %v is not an *Error", err)
			require.NotContains(t, err.Error(), "\n")
			require.Nil(t, s)
			return
		}
		require.NoError(t, s.Validate(), "a parsed spec must validate again")
		require.Len(t, s.ServiceOrder, len(s.Services))
		require.Len(t, s.TaskOrder, len(s.Tasks))
		require.Len(t, s.EdgeOrder, len(s.Edge))
		require.Len(t, s.EnvironmentOrder, len(s.Environments))
		for _, name := range s.EnvironmentOrder {
			require.Equal(t, name, s.Environments[name].Name)
			require.Equal(t, EngineAWS, s.Environments[name].Engine)
		}
		for _, name := range s.ServiceOrder {
			svc := s.Services[name]
			require.Equal(t, name, svc.Name)
			require.Len(t, svc.SidecarOrder, len(svc.Sidecars))
			require.GreaterOrEqual(t, svc.DesiredInstances(), 1)
			require.Positive(t, svc.Health.Interval)
			require.Positive(t, svc.Timeout)
		}
		_, err = json.Marshal(s)
		require.NoError(t, err)

		// Parsing is deterministic: the same bytes give the same spec.
		again, err := Parse(goldenName, data)
		require.NoError(t, err)
		a, _ := json.Marshal(s)
		b, _ := json.Marshal(again)
		require.Equal(t, string(a), string(b))
	})
}
