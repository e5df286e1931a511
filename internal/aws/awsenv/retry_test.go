package awsenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

// Throttling mid-deploy is retried, not reported: registering the task
// definition and switching the rule are each throttled twice, and the
// deploy still succeeds, having sent each call twice more.
func TestThrottlingIsRetried(t *testing.T) {
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)

	register, modify := a.proxy.Count("ecs:RegisterTaskDefinition"), a.proxy.Count("elasticloadbalancing:ModifyRule")
	a.proxy.Handle("ecs:RegisterTaskDefinition", awstest.Times(2, awstest.Fail(400, "ThrottlingException", "Rate exceeded")))
	a.proxy.Handle("elasticloadbalancing:ModifyRule", awstest.Times(2, awstest.Fail(400, "Throttling", "Rate exceeded")))
	e := a.env(Options{})
	res, msgs := a.deploy(e)
	require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	assert.Equal(t, 2, res.Deployed[0].Revision)
	assert.Equal(t, "b", a.serving(e, "web"))

	// One task definition, registered on the third try; two rules
	// (host and default) switched, the first on its third try.
	assert.Equal(t, 3, a.proxy.Count("ecs:RegisterTaskDefinition")-register)
	assert.Equal(t, 2+2, a.proxy.Count("elasticloadbalancing:ModifyRule")-modify)
	assert.Equal(t, map[string]string{"host:web": "b", "default": "b"}, a.ruleWeights(e, "web"))
}
