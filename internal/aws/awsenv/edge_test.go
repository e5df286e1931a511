package awsenv

import (
	"strings"
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

// ruleValues counts the values of a rule's conditions, as the ALB's quota
// of 5 per rule counts them.
func ruleValues(conds []elbtypes.RuleCondition) int {
	n := 0
	for _, c := range conds {
		switch {
		case c.HostHeaderConfig != nil:
			n += len(c.HostHeaderConfig.Values)
		case c.PathPatternConfig != nil:
			n += len(c.PathPatternConfig.Values)
		case c.HttpHeaderConfig != nil:
			n += len(c.HttpHeaderConfig.Values)
		}
	}
	return n
}

// A service with many domains stays within the ALB's 5 condition values
// per rule, with or without entrypoints and during a secret rotation (two
// secret values): its hosts are shared out over several rules that
// together match every one of them, with the same keys whatever the
// number of secret values.
func TestRulesKeepToTheALBsConditionQuota(t *testing.T) {
	const base = `app: shop
services:
  web:
    image: web:1
    port: 8080
    domains: [a.example.com, b.example.com, c.example.com, d.example.com, e.example.com, f.example.com]
    routes: [{path: /api, service: api}, {path: /, service: api}]
  api: {image: api:1, port: 9000}
`
	e := &Env{App: "shop", Name: "prod"}
	wantHosts := []string{"web.shop.*", "a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com", "f.example.com"}
	for name, src := range map[string]string{"without edge": base, "with edge": base + "edge:\n  www: {hosts: [www.example.com], origin: web}\n"} {
		t.Run(name, func(t *testing.T) {
			sp, err := spec.Parse("berth.yaml", []byte(src))
			require.NoError(t, err)
			keysOf := func(secrets []string) []string {
				var keys []string
				for _, r := range e.wantRules(sp, secrets) {
					keys = append(keys, r.Key)
				}
				return keys
			}
			assert.Equal(t, keysOf([]string{"old"}), keysOf([]string{"old", "new"}), "a rotation changes no rule's key")

			hosts := map[string][]string{} // by rule family: host:web, route:web:/api, ...
			for _, r := range e.wantRules(sp, []string{"old", "new"}) {
				assert.LessOrEqual(t, ruleValues(r.Conditions), 5, "rule %s", r.Key)
				family, _, _ := strings.Cut(r.Key, "+")
				for _, c := range r.Conditions {
					if c.HostHeaderConfig != nil {
						hosts[family] = append(hosts[family], c.HostHeaderConfig.Values...)
					}
				}
			}
			for _, family := range []string{"host:web", "route:web:/api", "route:web:/"} {
				assert.ElementsMatch(t, wantHosts, hosts[family], "%s matches every host of web", family)
			}
		})
	}
}

// A rotation rewrites only the secret's values of a live rule, as read,
// whatever berth.yaml says now; the legacy Values of a typed condition
// are dropped (ModifyRule takes one or the other).
func TestWithSecretValuesKeepsTheRestOfARule(t *testing.T) {
	live := []elbtypes.RuleCondition{
		{Field: aws.String("host-header"), Values: []string{"web.shop.*", "old.example.com"}, HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{"web.shop.*", "old.example.com"}}},
		cdn.SecretCondition("old"),
	}
	got, changed := withSecretValues(live, []string{"old", "new"})
	require.True(t, changed)
	require.Len(t, got, 2)
	assert.Nil(t, got[0].Values)
	assert.Equal(t, []string{"web.shop.*", "old.example.com"}, got[0].HostHeaderConfig.Values, "the deployed hosts, not the file's")
	assert.Equal(t, []string{"old", "new"}, headerValues(got, cdn.HeaderOriginSecret))
	_, changed = withSecretValues(live[:1], []string{"new"})
	assert.False(t, changed, "a rule without the secret is left alone")
}
