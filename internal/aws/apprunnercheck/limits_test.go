package apprunnercheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

// shape is one shape of botocore's App Runner model, as much as the checks
// here read.
type shape struct {
	Type    string                                           `json:"type"`
	Min     *int                                             `json:"min"`
	Max     *int                                             `json:"max"`
	Pattern string                                           `json:"pattern"`
	Enum    []string                                         `json:"enum"`
	Members map[string]struct{ Shape, Documentation string } `json:"members"`
}

// appRunnerModel reads botocore's published App Runner model (installed
// with the aws CLI and moto): the limits Check compares a spec with must be
// the ones AWS's own API declares. It skips when botocore is absent, unless
// BERTH_REQUIRE_MOTO is set, as in .ci/run.
func appRunnerModel(t *testing.T) (shapes map[string]shape, operations []string) {
	t.Helper()
	var model struct {
		Operations map[string]json.RawMessage `json:"operations"`
		Shapes     map[string]shape           `json:"shapes"`
	}
	require.NoError(t, json.Unmarshal(awstest.BotocoreModel(t, "apprunner", "2020-05-15"), &model))
	for op := range model.Operations {
		operations = append(operations, op)
	}
	slices.Sort(operations)
	return model.Shapes, operations
}

// rangeOf is a model shape's [min, max].
func rangeOf(t *testing.T, shapes map[string]shape, name string) (int, int) {
	t.Helper()
	s, ok := shapes[name]
	require.True(t, ok, "no shape %s in the model", name)
	require.NotNil(t, s.Min, name)
	lo, hi := *s.Min, -1
	if s.Max != nil {
		hi = *s.Max
	}
	return lo, hi
}

func TestLimitsMatchAppRunnerModel(t *testing.T) {
	shapes, ops := appRunnerModel(t)

	// Every vCPU and memory App Runner's API takes is in Sizes, and no other.
	alternatives := func(pattern string) []string {
		m := regexp.MustCompile(`^(.*)\|\((.*)\) (vCPU|GB)$`).FindStringSubmatch(pattern)
		require.NotNil(t, m, pattern)
		return strings.Split(m[2], "|")
	}
	var cpus, mems []string
	for _, s := range Sizes {
		cpus = append(cpus, strings.TrimSuffix(s.CPU(), " vCPU"))
		mems = append(mems, strings.TrimSuffix(s.Memory(), " GB"))
	}
	slices.Sort(cpus)
	slices.Sort(mems)
	modelCPUs, modelMems := alternatives(shapes["Cpu"].Pattern), alternatives(shapes["Memory"].Pattern)
	slices.Sort(modelCPUs)
	slices.Sort(modelMems)
	assert.Equal(t, modelCPUs, slices.Compact(cpus))
	assert.Equal(t, modelMems, slices.Compact(mems))

	lo, hi := rangeOf(t, shapes, "ASConfigMaxConcurrency")
	assert.Equal(t, [2]int{1, MaxConcurrency}, [2]int{lo, hi})
	lo, hi = rangeOf(t, shapes, "ASConfigMinSize")
	assert.Equal(t, [2]int{1, MaxMinSize}, [2]int{lo, hi})
	doc := shapes["CreateAutoScalingConfigurationRequest"].Members["MaxSize"].Documentation
	assert.Contains(t, doc, "Default: <code>"+strconv.Itoa(DefaultMaxSize)+"</code>")
	for _, name := range []string{"HealthCheckInterval", "HealthCheckTimeout"} {
		lo, hi = rangeOf(t, shapes, name)
		assert.Equal(t, [2]int{minHealthSeconds, maxHealthSeconds}, [2]int{lo, hi}, name)
	}
	for _, name := range []string{"HealthCheckHealthyThreshold", "HealthCheckUnhealthyThreshold"} {
		lo, hi = rangeOf(t, shapes, name)
		assert.Equal(t, [2]int{minThreshold, maxThreshold}, [2]int{lo, hi}, name)
	}
	assert.ElementsMatch(t, []string{"TCP", "HTTP"}, shapes["HealthCheckProtocol"].Enum)
	_, hi = rangeOf(t, shapes, "RuntimeEnvironmentVariablesValue")
	assert.Equal(t, MaxEnvValue, hi)
	_, hi = rangeOf(t, shapes, "RuntimeEnvironmentVariablesKey")
	assert.Equal(t, MaxEnvValue, hi)

	// One port, one image, one instance configuration: nothing for a second
	// container or port.
	img := shapes["ImageConfiguration"].Members
	assert.Equal(t, "String", img["Port"].Shape)
	assert.ElementsMatch(t, []string{"Port", "RuntimeEnvironmentVariables", "RuntimeEnvironmentSecrets", "StartCommand"}, keys(img))
	assert.NotContains(t, keys(shapes["SourceConfiguration"].Members), "ImageRepositories")

	// No operation execs into an instance or runs a task.
	assert.Contains(t, ops, "CreateService")
	for _, op := range ops {
		assert.NotRegexp(t, `(?i)exec|command|task|session|run`, op, "the model has %s: LimitExec or LimitNoTasks is wrong", op)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Every limit Check can cite is in Limits once, with an https source.
func TestLimitsTable(t *testing.T) {
	ids := []LimitID{LimitInstanceSizes, LimitRequestTimeout, LimitHTTPVersions, LimitWebSockets, LimitOneContainer,
		LimitArchitecture, LimitExec, LimitMinSize, LimitMaxSize, LimitMaxConcurrency, LimitOnePort, LimitWebOnly,
		LimitNoRouting, LimitNoPrivateName, LimitVPCEgress, LimitNoTasks, LimitStateless, LimitNoLBControls,
		LimitHealthCheck, LimitEnvironment, LimitIdleCPU}
	assert.Len(t, Limits, len(ids))
	seen := map[LimitID]bool{}
	for _, l := range Limits {
		assert.False(t, seen[l.ID], "%s twice", l.ID)
		seen[l.ID] = true
		assert.Regexp(t, `^https://(docs\.aws\.amazon\.com|github\.com/aws/apprunner-roadmap)/`, l.Source, l.ID)
		assert.NotEmpty(t, l.Limit, l.ID)
	}
	for _, id := range ids {
		assert.Equal(t, id, LimitOf(id).ID)
	}
	assert.Panics(t, func() { LimitOf("nope") })
}

// docs/apprunner-limits.md, which the README links, lists every limit with
// its source: the table here and the page cannot drift apart.
func TestLimitsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "apprunner-limits.md"))
	require.NoError(t, err)
	doc := string(b)
	for _, l := range Limits {
		row := ""
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "| `"+string(l.ID)+"` |") {
				row = line // the limits table comes first
				break
			}
		}
		require.NotEmpty(t, row, "docs/apprunner-limits.md has no row for %s", l.ID)
		assert.Contains(t, row, "("+l.Source+")", "the row of %s cites another source", l.ID)
	}
	for _, n := range Needs {
		assert.Contains(t, doc, "| `"+string(n)+"`", "need %s is not documented", n)
	}
}
