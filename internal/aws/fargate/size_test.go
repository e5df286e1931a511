package fargate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
)

const (
	gib = 1 << 30
	mb  = 1 << 20
)

func TestSizesTable(t *testing.T) {
	// The ECS guide's table, counted: 3 + 4 + 7 + 13 + 23 + 12 + 12.
	assert.Len(t, Sizes, 74)
	for _, s := range []TaskSize{{256, 512}, {256, 2048}, {512, 4096}, {1024, 8192}, {2048, 16384}, {4096, 30720}, {8192, 16384}, {8192, 61440}, {16384, 32768}, {16384, 122880}} {
		assert.True(t, s.Valid(), "%v is sold", s)
	}
	for _, s := range []TaskSize{{256, 1536}, {256, 3072}, {512, 512}, {1024, 9216}, {4096, 31744}, {8192, 17408}, {16384, 36864}, {32768, 131072}} {
		assert.False(t, s.Valid(), "%v is not sold", s)
	}
	assert.Equal(t, "cpu 0.25 with 512 MiB", TaskSize{256, 512}.String())
	assert.Equal(t, "cpu 16 with 120 GiB", TaskSize{16384, 122880}.String())
}

// sized builds a service with a sidecar per extra (cpu, memory) pair.
func sized(cpu float64, memory int64, sidecars ...[2]float64) *spec.Service {
	svc := &spec.Service{Name: "web", Image: "web:1", CPU: cpu, Memory: memory}
	for i, sc := range sidecars {
		name := []string{"envoy", "otel", "init"}[i]
		if svc.Sidecars == nil {
			svc.Sidecars = map[string]*spec.Sidecar{}
		}
		svc.Sidecars[name] = &spec.Sidecar{Name: name, Image: name + ":1", CPU: sc[0], Memory: int64(sc[1]), Essential: true}
		svc.SidecarOrder = append(svc.SidecarOrder, name)
	}
	return svc
}

func TestSize(t *testing.T) {
	tests := []struct {
		name string
		svc  *spec.Service
		want TaskSize
	}{
		{"nothing set: the smallest", sized(0, 0), TaskSize{256, 512}},
		{"exact pair", sized(0.25, 512*mb), TaskSize{256, 512}},
		{"cpu only: its smallest memory", sized(1, 0), TaskSize{1024, 2048}},
		{"memory only: the smallest cpu that has it", sized(0, 3*gib), TaskSize{512, 3072}},
		{"memory only, 6 GiB", sized(0, 6*gib), TaskSize{1024, 6144}},
		{"8 vCPU", sized(8, 16*gib), TaskSize{8192, 16384}},
		{"the largest", sized(16, 120*gib), TaskSize{16384, 122880}},
		{"sidecars summed", sized(0.25, 512*mb, [2]float64{0.25, 512 * mb}), TaskSize{512, 1024}},
		{"three containers summed", sized(0.5, 1*gib, [2]float64{0.25, 512 * mb}, [2]float64{0.25, 512 * mb}), TaskSize{1024, 2048}},
		{"a sidecar without memory makes the sum a floor", sized(0.5, 1*gib, [2]float64{0.5, 0}), TaskSize{1024, 2048}},
		{"a sidecar without cpu makes the cpu a floor", sized(0.5, 3*gib, [2]float64{0, 1 * gib}), TaskSize{512, 4096}},
		{"only a sidecar sets sizes", sized(0, 0, [2]float64{0.25, 256 * mb}), TaskSize{256, 512}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Size(tc.svc)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.True(t, got.Valid())
		})
	}
}

func TestSizeRefused(t *testing.T) {
	tests := []struct {
		name string
		svc  *spec.Service
		want string
	}{
		{"memory the cpu does not have", sized(0.25, 3*gib),
			"services.web.memory: Fargate has no 0.25 vCPU task with 3 GiB; nearest sizes: cpu 0.5 with 3 GiB, cpu 1 with 3 GiB"},
		{"a cpu Fargate does not sell", sized(0.3, 0),
			"services.web.cpu: Fargate has no 0.3 vCPU task; nearest sizes: cpu 0.25 with 512 MiB, cpu 0.5 with 1 GiB"},
		{"memory between steps", sized(2, 4608*mb),
			"services.web.memory: Fargate has no 2 vCPU task with 4608 MiB; nearest sizes: cpu 2 with 5 GiB, cpu 1 with 5 GiB"},
		{"a sum Fargate does not sell", sized(0.5, 1*gib, [2]float64{0.25, 512 * mb}),
			"services.web.cpu: Fargate has no 0.75 vCPU task (web 0.5 + envoy 0.25); nearest sizes: cpu 1 with 2 GiB, cpu 0.5 with 2 GiB"},
		{"a memory sum the cpu does not have", sized(0.25, 1*gib, [2]float64{0.25, 4 * gib}),
			"services.web.memory: Fargate has no 0.5 vCPU task with 5 GiB (web 1GiB + envoy 4GiB); nearest sizes: cpu 1 with 5 GiB, cpu 2 with 5 GiB"},
		{"more memory than any task", sized(0, 200*gib),
			"services.web.memory: Fargate has no task with 200 GiB; the largest is cpu 16 with 120 GiB"},
		{"more cpu than any task", sized(32, 0),
			"services.web.cpu: Fargate has no 32 vCPU task; nearest sizes: cpu 16 with 32 GiB, cpu 8 with 16 GiB"},
		{"a floor above every cpu names the sidecar that set it", sized(0, 0, [2]float64{20, 0}),
			"services.web.sidecars.envoy.cpu: Fargate has no task with 20 vCPU or more; the largest is cpu 16 with 120 GiB"},
		{"memory above every task, set on a sidecar, with a cpu floor", sized(0.5, 0, [2]float64{0, 200 * gib}),
			"services.web.sidecars.envoy.memory: Fargate has no task with 0.5 vCPU or more and 200 GiB or more; the largest is cpu 16 with 120 GiB"},
		{"decimal gigabytes", sized(0.5, 3_000_000_000),
			"services.web.memory: Fargate has no 0.5 vCPU task with 2862 MiB; nearest sizes: cpu 0.5 with 3 GiB, cpu 1 with 3 GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Size(tc.svc)
			require.Error(t, err)
			var se *spec.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		svc  *spec.Service
		want map[string]ContainerSize
	}{
		{"one container, nothing set, reserves the task", sized(0, 0), map[string]ContainerSize{
			"web": {MemoryReservation: 512},
		}},
		{"set sizes are reserved and limited", sized(0.25, 512*mb, [2]float64{0.25, 512 * mb}), map[string]ContainerSize{
			"web":   {CPU: 256, Memory: 512, MemoryReservation: 512},
			"envoy": {CPU: 256, Memory: 512, MemoryReservation: 512},
		}},
		{"a container without memory gets the rest", sized(0.5, 1*gib, [2]float64{0.5, 0}), map[string]ContainerSize{
			"web":   {CPU: 512, Memory: 1024, MemoryReservation: 1024},
			"envoy": {CPU: 512, MemoryReservation: 1024},
		}},
		{"no rest left: every container reserves at most an equal share", sized(0.25, 512*mb, [2]float64{0, 0}), map[string]ContainerSize{
			"web":   {CPU: 256, Memory: 512, MemoryReservation: 256},
			"envoy": {MemoryReservation: 256},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size, err := Size(tc.svc)
			require.NoError(t, err)
			got := Split(tc.svc, size)
			assert.Equal(t, tc.want, got)
			total := 0
			for _, c := range got {
				total += c.MemoryReservation
				assert.GreaterOrEqual(t, c.MemoryReservation, minReservation)
				if c.Memory > 0 {
					assert.LessOrEqual(t, c.MemoryReservation, c.Memory, "a reservation is within the limit")
				}
			}
			assert.LessOrEqual(t, total, size.Memory, "reservations fit the task")
		})
	}
}
