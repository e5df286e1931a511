package awsenv

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/spec"
)

// headerValues are the values a rule's conditions require of header h.
func headerValues(conds []elbtypes.RuleCondition, h string) []string {
	for _, c := range conds {
		if aws.ToString(c.Field) == "http-header" && c.HttpHeaderConfig != nil && aws.ToString(c.HttpHeaderConfig.HttpHeaderName) == h {
			return c.HttpHeaderConfig.Values
		}
	}
	return nil
}

// An app without edge: keeps its rules as they were (the ALB is its public
// entrypoint); with an entrypoint every rule requires the origin secret,
// and each HTTP service has the edge:SERVICE rule CloudFront's requests
// for it match.
func TestRulesRequireTheOriginSecretOnlyWithEntrypoints(t *testing.T) {
	const services = `app: shop
services:
  web:
    image: web:1
    port: 8080
    domains: [shop.example.com]
    routes: [{path: /api, service: api}]
  api: {image: api:1, port: 9000}
  worker: {image: worker:1}
`
	e := &Env{App: "shop", Name: "prod"}
	plain, err := spec.Parse("berth.yaml", []byte(services))
	require.NoError(t, err)
	for _, r := range e.wantRules(plain, []string{"s3cret"}) {
		assert.Nil(t, headerValues(r.Conditions, cdn.HeaderOriginSecret), "rule %s of an app without entrypoints requires the secret", r.Key)
		assert.NotContains(t, r.Key, "edge:")
	}

	edged, err := spec.Parse("berth.yaml", []byte(services+"edge:\n  www: {hosts: [www.example.com], origin: web}\n"))
	require.NoError(t, err)
	keys := map[string]ruleSpec{}
	for _, r := range e.wantRules(edged, []string{"s3cret"}) {
		keys[r.Key] = r
		assert.Equal(t, []string{"s3cret"}, headerValues(r.Conditions, cdn.HeaderOriginSecret), "rule %s", r.Key)
	}
	for _, k := range []string{"edge:web", "edge:api", "host:web", "host:api", "route:web:/api", "default"} {
		assert.Contains(t, keys, k)
	}
	assert.NotContains(t, keys, "edge:worker", "a service without a port gets no edge rule")
	assert.Equal(t, []string{"api"}, headerValues(keys["edge:api"].Conditions, cdn.HeaderService))
	assert.Less(t, keys["edge:api"].Priority, keys["route:web:/api"].Priority, "edge rules come before the host-based ones")
}
