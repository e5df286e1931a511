package apprunner

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// App Runner's instance sizes: the vCPUs and memory (GiB) it sells, and
// which memory goes with which vCPU ("App Runner supported configurations",
// https://docs.aws.amazon.com/apprunner/latest/dg/architecture.html#architecture.vcpu-memory;
// the patterns are botocore's Cpu and Memory shapes).
var sizes = map[float64][]float64{
	0.25: {0.5, 1},
	0.5:  {1},
	1:    {2, 3, 4},
	2:    {4, 6},
	4:    {8, 10, 12},
}

const gib = 1 << 30

// parseCPU reads App Runner's Cpu ("1 vCPU", or CPU units "1024") as vCPUs.
func parseCPU(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, "vCPU"); ok {
		return strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	units, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("App Runner cpu %q is neither vCPU nor CPU units", s)
	}
	return units / 1024, nil
}

// parseMemory reads App Runner's Memory ("2 GB", or MB "2048") as bytes.
// App Runner's GB are GiB: "2 GB" is the 2048 MB the same field accepts.
func parseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, "GB"); ok {
		g, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("App Runner memory %q is not a size", s)
		}
		return int64(g * gib), nil
	}
	mb, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("App Runner memory %q is neither GB nor MB", s)
	}
	return mb << 20, nil
}

// instanceSize turns berth's cpu (vCPUs) and memory (bytes) into App
// Runner's strings, refusing a size or pair App Runner does not sell.
func instanceSize(cpu float64, memory int64) (string, string, error) {
	mems, ok := sizes[cpu]
	if !ok {
		return "", "", fmt.Errorf("cpu %g: App Runner sells 0.25, 0.5, 1, 2 or 4 vCPU; set cpu: to one of them", cpu)
	}
	g := float64(memory) / gib
	if !slices.Contains(mems, g) {
		return "", "", fmt.Errorf("memory %s with cpu %g: App Runner sells %s with %g vCPU; set memory: to one of them", formatGB(g), cpu, joinGB(mems), cpu)
	}
	return strconv.FormatFloat(cpu, 'f', -1, 64) + " vCPU", formatGB(g), nil
}

func formatGB(g float64) string { return strconv.FormatFloat(g, 'f', -1, 64) + " GB" }

func joinGB(gs []float64) string {
	var parts []string
	for _, g := range gs {
		parts = append(parts, strconv.FormatFloat(g, 'f', -1, 64)+"GiB")
	}
	return strings.Join(parts, ", ")
}

// splitCommand splits App Runner's StartCommand into words: spaces
// separate them, single or double quotes keep spaces in one.
func splitCommand(s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// joinCommand is splitCommand's inverse: a word with a space or quote is
// quoted, single quotes around everything but single quotes themselves,
// which go in double quotes (quoted pieces join into one word).
func joinCommand(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && !strings.ContainsAny(w, " \t\n'\"") {
			out[i] = w
			continue
		}
		var b strings.Builder
		for j, part := range strings.Split(w, "'") {
			if j > 0 {
				b.WriteString(`"'"`)
			}
			if part != "" || j == 0 {
				b.WriteString("'" + part + "'")
			}
		}
		out[i] = b.String()
	}
	return strings.Join(out, " ")
}
