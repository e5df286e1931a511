package fargate

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/spec"
)

// TaskSize is a Fargate task's cpu and memory, as ECS writes them in a task
// definition.
type TaskSize struct {
	// CPU is in CPU units, 1024 to a vCPU.
	CPU int
	// Memory is in MiB.
	Memory int
}

// String renders a size as people (and berth's messages) say it:
// "cpu 0.25 with 512 MiB".
func (t TaskSize) String() string {
	return "cpu " + formatVCPU(float64(t.CPU)/unitsPerVCPU) + " with " + formatMiB(t.Memory)
}

// unitsPerVCPU is how many ECS CPU units make a vCPU.
const unitsPerVCPU = 1024

const mib = 1 << 20

// fargateCPUs are the task cpu values Fargate sells and the memory each
// allows, from the ECS developer guide's "Task CPU and memory" table
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html,
// and RegisterTaskDefinition's memory parameter in the ECS API reference):
//
//	256 (.25 vCPU)  512 MiB, 1 GiB, 2 GiB
//	512 (.5 vCPU)   1-4 GiB in 1 GiB steps
//	1024 (1 vCPU)   2-8 GiB in 1 GiB steps
//	2048 (2 vCPU)   4-16 GiB in 1 GiB steps
//	4096 (4 vCPU)   8-30 GiB in 1 GiB steps
//	8192 (8 vCPU)   16-60 GiB in 4 GiB steps (Linux platform 1.4.0 or later)
//	16384 (16 vCPU) 32-120 GiB in 8 GiB steps (Linux platform 1.4.0 or later)
var fargateCPUs = []struct {
	cpu              int
	minMiB, maxMiB   int
	stepMiB          int
	explicitMemories []int // when the steps are not even
}{
	{cpu: 256, explicitMemories: []int{512, 1024, 2048}},
	{cpu: 512, minMiB: 1024, maxMiB: 4096, stepMiB: 1024},
	{cpu: 1024, minMiB: 2048, maxMiB: 8192, stepMiB: 1024},
	{cpu: 2048, minMiB: 4096, maxMiB: 16384, stepMiB: 1024},
	{cpu: 4096, minMiB: 8192, maxMiB: 30720, stepMiB: 1024},
	{cpu: 8192, minMiB: 16384, maxMiB: 61440, stepMiB: 4096},
	{cpu: 16384, minMiB: 32768, maxMiB: 122880, stepMiB: 8192},
}

// Sizes are every task size Fargate sells, smallest cpu first and, for one
// cpu, smallest memory first.
var Sizes = func() []TaskSize {
	var out []TaskSize
	for _, c := range fargateCPUs {
		mems := c.explicitMemories
		for m := c.minMiB; c.stepMiB > 0 && m <= c.maxMiB; m += c.stepMiB {
			mems = append(mems, m)
		}
		for _, m := range mems {
			out = append(out, TaskSize{CPU: c.cpu, Memory: m})
		}
	}
	return out
}()

// Valid reports whether Fargate sells a task of this size.
func (t TaskSize) Valid() bool { return slices.Contains(Sizes, t) }

// ContainerSize is what one container of a task is given: CPU units
// reserved (0: a share of what no container reserved), a hard memory limit
// (0: none but the task's), and the memory reserved for it.
type ContainerSize struct {
	CPU               int
	Memory            int
	MemoryReservation int
}

// container is one container of a service's task, as the sizes see it.
type container struct {
	name   string
	field  string // its path in berth.yaml, e.g. services.web.sidecars.envoy
	cpu    float64
	memory int64
}

// containers lists the service's own container, then its sidecars in file
// order.
func containers(svc *spec.Service) []container {
	path := "services." + svc.Name
	out := []container{{name: svc.Name, field: path, cpu: svc.CPU, memory: svc.Memory}}
	for _, name := range sidecarNames(svc) {
		sc := svc.Sidecars[name]
		out = append(out, container{name: name, field: path + ".sidecars." + name, cpu: sc.CPU, memory: sc.Memory})
	}
	return out
}

// sidecarNames is the sidecars in file order, or sorted for a spec built in
// code.
func sidecarNames(svc *spec.Service) []string {
	if len(svc.SidecarOrder) == len(svc.Sidecars) {
		ok := true
		for _, n := range svc.SidecarOrder {
			if svc.Sidecars[n] == nil {
				ok = false
			}
		}
		if ok {
			return svc.SidecarOrder
		}
	}
	var names []string
	for n, sc := range svc.Sidecars {
		if sc != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func cpuUnits(vcpu float64) int { return int(math.Ceil(vcpu*unitsPerVCPU - 1e-9)) }

func memMiB(bytes int64) int { return int((bytes + mib - 1) / mib) }

// need is what a service asks of one dimension (cpu or memory): the sum of
// what its containers set, exact when every container sets it (the user
// chose the task's size) and a lower bound otherwise (the containers that
// set nothing share what is left, so a bigger task is fine).
type need struct {
	sum   int // units or MiB
	exact bool
	// key is the field a refusal names: the service's own when it sets
	// the value, else the first sidecar's that does.
	key string
	// parts are "web 0.5" per container that set it, for messages.
	parts []string
	// vcpu is the cpu sum as written, for messages (sum is in units,
	// rounded up per container).
	vcpu float64
}

func (n need) fits(v int) bool {
	if n.exact {
		return v == n.sum
	}
	return v >= n.sum
}

func needs(svc *spec.Service) (cpu, mem need) {
	cs := containers(svc)
	cpu.exact, mem.exact = true, true
	for _, c := range cs {
		if c.cpu > 0 {
			cpu.sum += cpuUnits(c.cpu)
			cpu.vcpu += c.cpu
			cpu.parts = append(cpu.parts, c.name+" "+formatVCPU(c.cpu))
			if cpu.key == "" {
				cpu.key = c.field + ".cpu"
			}
		} else {
			cpu.exact = false
		}
		if c.memory > 0 {
			mem.sum += memMiB(c.memory)
			mem.parts = append(mem.parts, c.name+" "+spec.FormatSize(c.memory))
			if mem.key == "" {
				mem.key = c.field + ".memory"
			}
		} else {
			mem.exact = false
		}
	}
	return cpu, mem
}

// Size is the Fargate task size of a service: the cpu and memory of its own
// container plus its sidecars'. Where every container sets a value, the sum
// must be a size Fargate sells; where some set none, the sum is a floor and
// the task gets the smallest size above it (cpu 0.25 with 512 MiB when
// nothing is set). When Fargate sells no such task the error is a
// *spec.Error naming the key to change (no file or line: Check adds them)
// and the nearest sizes that would work.
func Size(svc *spec.Service) (TaskSize, error) {
	cpu, mem := needs(svc)
	for _, s := range Sizes {
		if cpu.fits(s.CPU) && mem.fits(s.Memory) {
			return s, nil
		}
	}
	cpuSold := slices.ContainsFunc(Sizes, func(s TaskSize) bool { return cpu.fits(s.CPU) })
	var b strings.Builder
	key := mem.key
	switch {
	case !cpuSold && cpu.exact:
		key = cpu.key
		b.WriteString("Fargate has no " + describeCPU(cpu) + " task" + sumOf(cpu))
	case !cpuSold:
		key = cpu.key
		b.WriteString("Fargate has no task with " + describeCPU(cpu) + sumOf(cpu))
	case cpu.exact:
		b.WriteString("Fargate has no " + describeCPU(cpu) + " task with " + describeMem(mem) + sumOf(mem))
	case cpu.sum > 0:
		b.WriteString("Fargate has no task with " + describeCPU(cpu) + " and " + describeMem(mem) + sumOf(mem))
	default:
		b.WriteString("Fargate has no task with " + describeMem(mem) + sumOf(mem))
	}
	b.WriteString("; ")
	b.WriteString(suggest(cpu, mem))
	return TaskSize{}, &spec.Error{Field: key, Msg: b.String()}
}

func describeCPU(n need) string {
	s := formatVCPU(n.vcpu)
	if n.exact {
		return s + " vCPU"
	}
	return s + " vCPU or more"
}

func describeMem(n need) string {
	if n.exact {
		return formatMiB(n.sum)
	}
	return formatMiB(n.sum) + " or more"
}

// sumOf says where a sum came from when more than one container made it.
func sumOf(n need) string {
	if len(n.parts) < 2 {
		return ""
	}
	return " (" + strings.Join(n.parts, " + ") + ")"
}

// maxSuggestions is how many nearest sizes a refusal offers.
const maxSuggestions = 2

// suggest names the nearest sizes that give at least the memory asked: for
// each cpu Fargate sells, its smallest memory that fits, nearest cpu to the
// one asked first.
func suggest(cpu, mem need) string {
	type cand struct {
		size TaskSize
		dist float64
	}
	var cands []cand
	for _, c := range fargateCPUs {
		i := slices.IndexFunc(Sizes, func(s TaskSize) bool { return s.CPU == c.cpu && s.Memory >= mem.sum })
		if i < 0 || !cpu.exact && c.cpu < cpu.sum {
			// Less memory than asked, or less cpu than the containers
			// reserve, would not run what the spec runs.
			continue
		}
		d := float64(c.cpu)
		if cpu.sum > 0 {
			d = math.Abs(math.Log2(float64(c.cpu) / float64(cpu.sum)))
		}
		cands = append(cands, cand{Sizes[i], d})
	}
	if len(cands) == 0 {
		return "the largest is " + Sizes[len(Sizes)-1].String()
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		switch {
		case a.dist < b.dist:
			return -1
		case a.dist > b.dist:
			return 1
		}
		return 0
	})
	var out []string
	for _, c := range cands[:min(maxSuggestions, len(cands))] {
		out = append(out, c.size.String())
	}
	return "nearest sizes: " + strings.Join(out, ", ")
}

// formatVCPU renders vCPUs to at most three decimals: 0.25, 1, 0.333.
func formatVCPU(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// formatMiB renders MiB as GiB when whole: 512 MiB, 3 GiB.
func formatMiB(m int) string {
	if m >= 1024 && m%1024 == 0 {
		return strconv.Itoa(m/1024) + " GiB"
	}
	return strconv.Itoa(m) + " MiB"
}

// minReservation is the least memory ECS lets a container reserve.
const minReservation = 6

// Split shares a task of size t among the service's containers, keyed by
// container name. A container that sets cpu reserves it; one that sets
// memory gets it as its hard limit. Every container gets a memory
// reservation, and together they never exceed the task's memory: the ones
// that set memory reserve it and the others share the rest, unless the rest
// would leave them less than an equal share of the task, in which case every
// container reserves at most that share. (A reservation is soft on Fargate,
// where the task's memory is the real limit. Fargate does not need one,
// but berth sets one on every container all the same: moto's RunTask, which
// the tests run against, answers HTTP 500 for a container with neither
// memory nor memoryReservation, and the EC2 launch type requires one too.)
func Split(svc *spec.Service, t TaskSize) map[string]ContainerSize {
	cs := containers(svc)
	out := make(map[string]ContainerSize, len(cs))
	set, unset := 0, 0
	for _, c := range cs {
		if c.memory > 0 {
			set += memMiB(c.memory)
		} else {
			unset++
		}
	}
	share := t.Memory / len(cs)
	generous := unset == 0 || t.Memory-set >= unset*share
	reserved := 0
	for _, c := range cs {
		var z ContainerSize
		if c.cpu > 0 {
			z.CPU = cpuUnits(c.cpu)
		}
		if c.memory > 0 {
			z.Memory = memMiB(c.memory)
			z.MemoryReservation = z.Memory
			if !generous {
				z.MemoryReservation = min(z.Memory, share)
			}
			reserved += z.MemoryReservation
		}
		out[c.name] = z
	}
	if unset > 0 {
		each := max((t.Memory-reserved)/unset, minReservation)
		for _, c := range cs {
			if c.memory == 0 {
				z := out[c.name]
				z.MemoryReservation = each
				out[c.name] = z
			}
		}
	}
	return out
}
