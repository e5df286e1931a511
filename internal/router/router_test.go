package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPercentToWeight(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		weight  int
	}{
		{0, 0},
		{0.5, 50},
		{12.25, 1225},
		{33.333, 3333},
		{100, AllTraffic},
	} {
		assert.Equal(t, tc.weight, PercentToWeight(tc.percent), "%v%%", tc.percent)
	}
}
