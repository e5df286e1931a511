package fargate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A service on App Runner has no task definition, target group or ALB of
// its own: what Fargate and the ALB cannot take is not refused for it (App
// Runner's limits are berth check's), while the same keys on a service on
// ECS still are.
func TestCheckLeavesAppRunnerServicesToAppRunner(t *testing.T) {
	const arn = "arn:aws:apprunner:eu-west-1:123456789012:service/shop-web/0123456789abcdef0123456789abcdef"
	block := `    image: web:1
    port: 8080
    cpu: 0.3
    health: {path: /health, interval: 2s, timeout: 1s, healthy: 1}
`
	sp := parse(t, `app: shop
environments:
  prod:
    engine: aws
    region: eu-west-1
    subnets: [subnet-0a1b2c3d]
services:
  web:
`+block+`    apprunner: `+arn+`
`)
	assert.Empty(t, messages(Check(sp, "prod")), "App Runner service: no Fargate or ALB refusal, and no ALB needing two subnets")

	sp = parse(t, `app: shop
environments:
  prod:
    engine: aws
    region: eu-west-1
    subnets: [subnet-0a1b2c3d]
services:
  web:
`+block)
	got := messages(Check(sp, "prod"))
	require.NotEmpty(t, got)
	joined := ""
	for _, m := range got {
		joined += m + "\n"
	}
	for _, want := range []string{"services.web.cpu", "services.web.health.interval", "services.web.health.healthy", "environments.prod.subnets"} {
		assert.Contains(t, joined, want)
	}
}
