package spec

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envSpec is a spec with the environments block given, services after it so
// that line numbers in the block start at 3.
func envSpec(block string) []byte {
	return []byte("app: shop\nenvironments:\n" + block + "services:\n  web: {image: web:1, port: 8080}\n")
}

func TestParseEnvironments(t *testing.T) {
	s, err := Parse(goldenName, envSpec(`  prod:
    engine: aws
    region: us-gov-west-1
    subnets: [subnet-0a1b2c3d4e5f67890]
    cluster: ops_cluster-1
  a:
    engine: aws
`))
	require.NoError(t, err)
	assert.Equal(t, []string{"prod", "a"}, s.EnvironmentOrder, "file order, not sorted")
	assert.Equal(t, &Environment{Name: "prod", Engine: EngineAWS, Region: "us-gov-west-1", Subnets: []string{"subnet-0a1b2c3d4e5f67890"}, Cluster: "ops_cluster-1"}, s.Environments["prod"])
	assert.Equal(t, &Environment{Name: "a", Engine: EngineAWS}, s.Environments["a"])
	assert.Equal(t, 3, s.Line("environments.prod"))
	assert.Equal(t, 6, s.Line("environments.prod.subnets[0]"))
	assert.True(t, s.Written("environments.prod.region"))
	assert.False(t, s.Written("environments.a.region"))

	env, err := s.Environment("prod")
	require.NoError(t, err)
	assert.Same(t, s.Environments["prod"], env)
	env, err = s.Environment("")
	require.NoError(t, err)
	assert.Nil(t, env, "no --env is the local engine")
	_, err = s.Environment("qa")
	assert.EqualError(t, err, `berth.yaml:2: environments: no environment "qa"; environments are: prod, a`)
}

func TestParseWithoutEnvironments(t *testing.T) {
	s, err := Parse(goldenName, []byte("app: shop\nservices:\n  web: {image: web:1}\n"))
	require.NoError(t, err)
	assert.Nil(t, s.Environments)
	assert.Nil(t, s.EnvironmentOrder)
	_, err = s.Environment("prod")
	assert.EqualError(t, err, `berth.yaml: environments: no environment "prod": the spec has no environments: block; add environments: {prod: {engine: aws}}`)
}

func TestParseEnvironmentsInvalid(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
	}{
		{"name with capitals", "  Prod: {engine: aws}\n",
			`berth.yaml:3: environments: invalid environment name "Prod": use 1-32 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`},
		{"name too long", "  abcdefghijklmnopqrstuvwxyz0123456: {engine: aws}\n",
			`berth.yaml:3: environments: invalid environment name "abcdefghijklmnopqrstuvwxyz0123456": use 1-32 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`},
		{"name local", "  local: {engine: aws}\n",
			`berth.yaml:3: environments: "local" is the local engine, used without --env; name AWS environments otherwise, e.g. prod`},
		{"unknown key", "  prod:\n    engine: aws\n    vpc: vpc-1\n",
			`berth.yaml:5: environments.prod: unknown key "vpc"; allowed: engine, region, subnets, cluster`},
		{"no engine", "  prod:\n    region: eu-west-1\n",
			"berth.yaml:3: environments.prod.engine: is required: engine: aws"},
		{"empty environment", "  prod:\n",
			"berth.yaml:3: environments.prod.engine: is required: engine: aws"},
		{"engine local", "  prod: {engine: local}\n",
			`berth.yaml:3: environments.prod.engine: "local" is the default without --env and is not written here; an environment names engine: aws`},
		{"engine unknown", "  prod:\n    engine: gcp\n",
			`berth.yaml:4: environments.prod.engine: unknown engine "gcp"; an environment names engine: aws`},
		{"engine not a string", "  prod: {engine: 1}\n",
			"berth.yaml:3: environments.prod.engine: must be a string, not an integer"},
		{"region shape", "  prod:\n    engine: aws\n    region: Europe\n",
			`berth.yaml:5: environments.prod.region: invalid region "Europe": use an AWS region code, e.g. eu-west-1 or us-east-1`},
		{"region without number", "  prod: {engine: aws, region: eu-west}\n",
			`berth.yaml:3: environments.prod.region: invalid region "eu-west": use an AWS region code, e.g. eu-west-1 or us-east-1`},
		{"subnet shape", "  prod:\n    engine: aws\n    subnets:\n      - subnet-0a1b2c3d\n      - sg-0a1b2c3d\n",
			`berth.yaml:7: environments.prod.subnets[1]: invalid subnet ID "sg-0a1b2c3d": use subnet- and 8 or 17 lowercase hex digits, e.g. subnet-0a1b2c3d4e5f67890`},
		{"subnet short", "  prod: {engine: aws, subnets: [subnet-0a1]}\n",
			`berth.yaml:3: environments.prod.subnets[0]: invalid subnet ID "subnet-0a1": use subnet- and 8 or 17 lowercase hex digits, e.g. subnet-0a1b2c3d4e5f67890`},
		{"duplicate subnet", "  prod:\n    engine: aws\n    subnets:\n      - subnet-0a1b2c3d\n      - subnet-0a1b2c3d\n",
			`berth.yaml:7: environments.prod.subnets[1]: duplicate subnet "subnet-0a1b2c3d" (also at line 6)`},
		{"subnets empty", "  prod: {engine: aws, subnets: []}\n",
			"berth.yaml:3: environments.prod.subnets: must be a non-empty list of strings"},
		{"subnets a string", "  prod: {engine: aws, subnets: subnet-0a1b2c3d}\n",
			"berth.yaml:3: environments.prod.subnets: must be a list of strings, e.g. [subnet-0a1b2c3d, subnet-4e5f6a7b], not a string"},
		{"cluster name", "  prod:\n    engine: aws\n    cluster: my cluster\n",
			`berth.yaml:5: environments.prod.cluster: invalid cluster name "my cluster": use 1-255 letters, digits, '-' and '_', or the cluster's ARN`},
		{"cluster ARN shape", "  prod:\n    engine: aws\n    cluster: arn:aws:ecs:eu-west-1:1234:cluster/ops\n",
			`berth.yaml:5: environments.prod.cluster: invalid cluster ARN "arn:aws:ecs:eu-west-1:1234:cluster/ops": use arn:aws:ecs:REGION:ACCOUNT:cluster/NAME, or the cluster's name`},
		{"cluster in another region, region after it", "  prod:\n    engine: aws\n    cluster: arn:aws:ecs:us-east-1:123456789012:cluster/ops\n    region: eu-west-1\n",
			`berth.yaml:5: environments.prod.cluster: cluster "arn:aws:ecs:us-east-1:123456789012:cluster/ops" is in region us-east-1, not the environment's region eu-west-1; use a cluster of eu-west-1 or its name`},
		{"not a mapping", "  prod: aws\n",
			"berth.yaml:3: environments.prod: must be a mapping with engine: aws, not a string"},
		{"block a list", "  - prod\n",
			"berth.yaml:3: environments: must be a mapping, not a list"},
		{"duplicate environment", "  prod: {engine: aws}\n  prod: {engine: aws}\n",
			`berth.yaml:4: environments: duplicate key "prod" (first at line 3)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(goldenName, envSpec(tc.block))
			require.Error(t, err)
			assert.Nil(t, s)
			var perr *Error
			require.True(t, errors.As(err, &perr))
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestValidateEnvironments(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		want   string
	}{
		{"valid", func(*Spec) {}, ""},
		{"engine cleared", func(s *Spec) { s.Environments["prod"].Engine = "" },
			"environments.prod.engine: is required: engine: aws"},
		{"subnet changed in code", func(s *Spec) { s.Environments["prod"].Subnets = []string{"subnet-XYZ"} },
			`environments.prod.subnets[0]: invalid subnet ID "subnet-XYZ": use subnet- and 8 or 17 lowercase hex digits, e.g. subnet-0a1b2c3d4e5f67890`},
		{"region changed so the cluster ARN no longer matches", func(s *Spec) { s.Environments["prod"].Region = "us-east-1" },
			`environments.prod.cluster: cluster "arn:aws:ecs:eu-west-1:123456789012:cluster/ops" is in region eu-west-1, not the environment's region us-east-1; use a cluster of us-east-1 or its name`},
		{"name does not match key", func(s *Spec) { s.Environments["prod"].Name = "qa" },
			`environments.prod: name "qa" does not match its key "prod"`},
		{"nil environment", func(s *Spec) { s.Environments["prod"] = nil },
			"environments.prod: is empty; it needs engine: aws"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := codeSpec()
			s.Environments = map[string]*Environment{"prod": {
				Name: "prod", Engine: EngineAWS, Region: "eu-west-1",
				Subnets: []string{"subnet-0a1b2c3d"}, Cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/ops",
			}}
			tc.mutate(s)
			err := s.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}
