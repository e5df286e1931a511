package fargate

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

// shape is one shape of a botocore service model, as much as the checks
// here read.
type shape struct {
	Type    string                            `json:"type"`
	Members map[string]struct{ Shape string } `json:"members"`
	Member  struct{ Shape string }            `json:"member"`
	Value   struct{ Shape string }            `json:"value"`
	Enum    []string                          `json:"enum"`
}

// ecsModel reads botocore's published ECS model (installed with the aws CLI
// and moto). It skips when botocore is absent, unless BERTH_REQUIRE_MOTO is
// set, as in .ci/run, where its absence is a broken machine.
func ecsModel(t *testing.T) map[string]shape {
	t.Helper()
	var model struct {
		Shapes map[string]shape `json:"shapes"`
	}
	require.NoError(t, json.Unmarshal(awstest.BotocoreModel(t, "ecs", "2014-11-13"), &model))
	require.Contains(t, model.Shapes, "RegisterTaskDefinitionRequest")
	return model.Shapes
}

// wireRequest sends td through the real aws-sdk-go-v2 ECS client to a
// loopback server and returns the JSON body the client wrote, which is
// exactly what AWS would receive.
func wireRequest(t *testing.T, td *ecs.RegisterTaskDefinitionInput) map[string]any {
	t.Helper()
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", r.Header.Get("X-Amz-Target"))
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"taskDefinition":{"family":"x","revision":1}}`)
	}))
	t.Cleanup(srv.Close)
	client := ecs.New(ecs.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
	})
	_, err := client.RegisterTaskDefinition(context.Background(), td)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	return doc
}

// conform walks a JSON value along a model shape and returns every member
// the shape does not define, every enum value it does not list, and every
// value of the wrong kind.
func conform(shapes map[string]shape, name, path string, v any) []string {
	s, ok := shapes[name]
	if !ok {
		return []string{path + ": no shape " + name + " in the model"}
	}
	var out []string
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{path + ": not a structure (" + name + ")"}
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			m, ok := s.Members[k]
			if !ok {
				out = append(out, path+"."+k+": the model's "+name+" has no such member")
				continue
			}
			out = append(out, conform(shapes, m.Shape, path+"."+k, obj[k])...)
		}
	case "list":
		items, ok := v.([]any)
		if !ok {
			return []string{path + ": not a list (" + name + ")"}
		}
		for _, item := range items {
			out = append(out, conform(shapes, s.Member.Shape, path+"[]", item)...)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{path + ": not a map (" + name + ")"}
		}
		for k, sub := range obj {
			out = append(out, conform(shapes, s.Value.Shape, path+"."+k, sub)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return []string{path + ": not a string (" + name + ")"}
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			out = append(out, path+": "+str+" is not in the model's "+name)
		}
	}
	return out
}

func TestTaskDefinitionMatchesECSModel(t *testing.T) {
	shapes := ecsModel(t)
	for name, in := range map[string]Input{"web with sidecars": shopInput(t), "worker": workerInput(t)} {
		t.Run(name, func(t *testing.T) {
			td, err := TaskDefinition(in)
			require.NoError(t, err)
			doc := wireRequest(t, td)
			require.NotEmpty(t, doc["containerDefinitions"])
			assert.Equal(t, "awsvpc", doc["networkMode"])
			assert.Empty(t, conform(shapes, "RegisterTaskDefinitionRequest", "RegisterTaskDefinition", doc))

			// The walk sees what the model does not define.
			c := doc["containerDefinitions"].([]any)[0].(map[string]any)
			c["healthcheck"] = map[string]any{}
			c["dependsOn"] = []any{map[string]any{"containerName": "x", "condition": "READY"}}
			assert.Equal(t, []string{
				"RegisterTaskDefinition.containerDefinitions[].dependsOn[].condition: READY is not in the model's ContainerCondition",
				"RegisterTaskDefinition.containerDefinitions[].healthcheck: the model's ContainerDefinition has no such member",
			}, conform(shapes, "RegisterTaskDefinitionRequest", "RegisterTaskDefinition", doc))
		})
	}
}

func TestEmittedEnumsAreInECSModel(t *testing.T) {
	shapes := ecsModel(t)
	arm, err := Architecture("linux/arm64")
	require.NoError(t, err)
	x86, err := Architecture("linux/amd64")
	require.NoError(t, err)
	emitted := map[string][]string{
		"ContainerCondition": {
			string(Condition("start")), string(Condition("healthy")),
			string(Condition("complete")), string(Condition("success")),
		},
		"CPUArchitecture":     {arm, x86},
		"OSFamily":            {string(types.OSFamilyLinux)},
		"NetworkMode":         {string(types.NetworkModeAwsvpc)},
		"Compatibility":       {string(types.CompatibilityFargate)},
		"LogDriver":           {string(types.LogDriverAwslogs)},
		"TransportProtocol":   {string(types.TransportProtocolTcp)},
		"ApplicationProtocol": {string(types.ApplicationProtocolHttp)},
	}
	for enum, values := range emitted {
		for _, v := range values {
			assert.True(t, slices.Contains(shapes[enum].Enum, v), "%s %q is not in the model's enum %v", enum, v, shapes[enum].Enum)
		}
	}
}
