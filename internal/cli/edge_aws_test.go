package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/testutil"
)

// An edge: entrypoint on an AWS environment, as a user drives it: deploy
// makes its CloudFront distribution (a service origin behind the ALB, a
// URL origin) and locks the ALB to the origin secret; switch moves the
// default origin with If-Match (retried on a stale ETag) and waits until
// it is deployed; shift goes through a staging distribution up to 15 % for
// a URL and through the ALB's weights between services; invalidate, ls
// --json; maintenance is refused; destroy removes the distributions. No
// Route 53 call at any point.
func TestEdgeOnAWS(t *testing.T) {
	p := awstest.UseProxy(t)
	awstest.SimulateECS(t, p)
	cf := awstest.FakeCloudFront(t, p)
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	app := testutil.UniqueName(t, "e")
	const url = "https://xyz.awsapprunner.com"
	file := writeSpec(t, `app: `+app+`
environments:
  prod:
    engine: aws
services:
  web:
    image: `+testutil.TestAppImage(t)+`
    port: 8080
    health: {path: /health, interval: 5s}
  api:
    image: `+testutil.TestAppImage(t)+`
    port: 8080
    health: {path: /health, interval: 5s}
edge:
  www:
    hosts: [www.`+app+`.example.com]
    origin: web
    failover: {url: "`+url+`"}
`)
	t.Chdir(filepath.Dir(file))
	run := func(args ...string) result {
		t.Helper()
		return berth(t, append([]string{"--env", "prod"}, args...)...)
	}
	ctx := context.Background()
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)

	r := run("deploy")
	t.Logf("berth deploy --env prod:\n%s", r.stdout)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "edge.www.failover: not carried to CloudFront yet", "what CloudFront does not carry is said")
	assert.Contains(t, r.stdout, "entrypoint www: distribution")

	// The distribution: both origins, the service's behind the ALB with the
	// secret, the default behavior on web.
	r = run("--json", "edge", "ls")
	require.Equal(t, 0, r.code, r.stderr)
	var eps []awsenv.Entrypoint
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &eps), r.stdout)
	require.Len(t, eps, 1)
	require.NotNil(t, eps[0].Distribution, r.stdout)
	id := eps[0].Distribution.DistributionID
	assert.Equal(t, "web", eps[0].Origin)
	assert.Equal(t, "web", eps[0].SpecOrigin)
	dc, err := c.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	require.NoError(t, err)
	origins := map[string]string{}
	for _, o := range dc.DistributionConfig.Origins.Items {
		origins[aws.ToString(o.Id)] = aws.ToString(o.DomainName)
	}
	lbs, err := c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"berth-" + app + "-prod"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"berth-web": aws.ToString(lbs.LoadBalancers[0].DNSName), "berth-xyz.awsapprunner.com": "xyz.awsapprunner.com"}, origins)
	assert.Equal(t, "berth-web", aws.ToString(dc.DistributionConfig.DefaultCacheBehavior.TargetOriginId))

	// The ALB: every rule requires the origin secret; edge:web and edge:api
	// send CloudFront's requests to their service.
	sec, err := c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(cdn.SecretName("prod", app))})
	require.NoError(t, err)
	rules := listenerRules(t, c, aws.ToString(lbs.LoadBalancers[0].LoadBalancerArn))
	require.NotEmpty(t, rules)
	services := map[string]bool{}
	for _, rule := range rules {
		assert.Equal(t, []string{aws.ToString(sec.SecretString)}, headerIn(rule, cdn.HeaderOriginSecret), "rule %s", aws.ToString(rule.Priority))
		if v := headerIn(rule, cdn.HeaderService); len(v) == 1 {
			services[v[0]] = true
		}
	}
	assert.Equal(t, map[string]bool{"web": true, "api": true}, services)

	// A shift to the URL: a staging distribution, within CloudFront's 15 %.
	r = run("edge", "shift", "www", url+"=10")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "continuous-deployment staging distribution")
	r = run("edge", "shift", "www", url+"=30")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "at most 15%")
	// Between two services: the ALB's weights, any share.
	r = run("edge", "shift", "www", "api=30")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "weighted target groups (rule edge:web)")
	r = run("--json", "edge", "show", "www")
	require.Equal(t, 0, r.code, r.stderr)
	var shown awsenv.Entrypoint
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &shown))
	assert.ElementsMatch(t, []string{url + "=10%", "api=30%"}, strings.Fields(sharesText(shown.Shares)))

	// The switch: the ETag read is stale once (someone else changed the
	// distribution), the update is retried; berth waits until Deployed.
	cf.ConcurrentChange(1)
	cf.InProgressPolls(1)
	before := len(cf.Updates())
	r = run("edge", "switch", "www", "--to", url)
	cf.InProgressPolls(0)
	t.Logf("berth edge switch --env prod www --to %s:\n%s%s", url, r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "www: all traffic to "+url)
	assert.Contains(t, r.stderr, "waiting for CloudFront to deploy it")
	var statuses []int
	for _, u := range cf.Updates()[before:] {
		if u.ID == id {
			statuses = append(statuses, u.Status)
		}
	}
	assert.Equal(t, []int{412, 200}, statuses, "a stale If-Match is answered 412 and retried")
	dist, err := c.CloudFront.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	require.NoError(t, err)
	assert.Equal(t, "Deployed", aws.ToString(dist.Distribution.Status))
	assert.Equal(t, "berth-xyz.awsapprunner.com", aws.ToString(dist.Distribution.DistributionConfig.DefaultCacheBehavior.TargetOriginId))
	r = run("--json", "edge", "show", "www")
	shown = awsenv.Entrypoint{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &shown), r.stdout)
	assert.Equal(t, url, shown.Origin)
	assert.Empty(t, shown.Shares, "a switch ends both shifts")

	r = run("edge", "invalidate", "www", "/*")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "www: CloudFront invalidation")
	r = run("edge", "maintenance", "www", "on")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "not available on AWS environments")

	// The origin secret rotated: while CloudFront moves to the new value
	// the rules accept both, then the new one alone.
	old := aws.ToString(sec.SecretString)
	var both atomic.Int32
	p.Intercept(func(call *awstest.Call) *awstest.Response {
		if call.Op() == "elasticloadbalancing:ModifyRule" && strings.Contains(string(call.Body), old) && !strings.Contains(string(call.Body), "Actions") {
			both.Add(1)
		}
		return nil
	})
	r = run("edge", "rotate-secret")
	p.Intercept(nil)
	t.Logf("berth edge rotate-secret --env prod:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, old, "the secret is never printed")
	sec, err = c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(cdn.SecretName("prod", app))})
	require.NoError(t, err)
	now := aws.ToString(sec.SecretString)
	assert.NotEqual(t, old, now)
	assert.NotContains(t, r.stdout+r.stderr, now, "the secret is never printed")
	assert.Positive(t, both.Load(), "the rules accepted the old value with the new one")
	for _, rule := range listenerRules(t, c, aws.ToString(lbs.LoadBalancers[0].LoadBalancerArn)) {
		assert.Equal(t, []string{now}, headerIn(rule, cdn.HeaderOriginSecret), "rule %s", aws.ToString(rule.Priority))
	}
	dc, err = c.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	require.NoError(t, err)
	for _, o := range dc.DistributionConfig.Origins.Items {
		if aws.ToString(o.Id) == "berth-web" {
			require.NotNil(t, o.CustomHeaders)
			assert.Equal(t, now, aws.ToString(o.CustomHeaders.Items[0].HeaderValue), "CloudFront sends the new value")
		}
	}
	r = berth(t, "edge", "rotate-secret")
	assert.Equal(t, 1, r.code, "without --env: %s", r.stderr)
	assert.Contains(t, r.stderr, "needs --env")

	for _, op := range p.Calls() {
		assert.False(t, strings.HasPrefix(strings.ToLower(op), "route53"), "berth called %s", op)
	}

	r = run("destroy")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	_, err = c.CloudFront.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	assert.ErrorContains(t, err, "NoSuchDistribution", "destroy deletes the distribution")
	list, err := c.CloudFront.ListDistributions(ctx, &cloudfront.ListDistributionsInput{})
	require.NoError(t, err)
	if list.DistributionList != nil {
		for _, d := range list.DistributionList.Items {
			assert.NotContains(t, aws.ToString(d.Comment), app, "distribution %s (staging %v) left", aws.ToString(d.Id), aws.ToBool(d.Staging))
		}
	}
}

func listenerRules(t *testing.T, c *clients.Clients, lb string) []elbtypes.Rule {
	t.Helper()
	ls, err := c.ELB.DescribeListeners(context.Background(), &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lb)})
	require.NoError(t, err)
	require.Len(t, ls.Listeners, 1)
	out, err := c.ELB.DescribeRules(context.Background(), &elb.DescribeRulesInput{ListenerArn: ls.Listeners[0].ListenerArn})
	require.NoError(t, err)
	var rules []elbtypes.Rule
	for _, r := range out.Rules {
		if !aws.ToBool(r.IsDefault) {
			rules = append(rules, r)
		}
	}
	return rules
}

func headerIn(r elbtypes.Rule, h string) []string {
	for _, c := range r.Conditions {
		if aws.ToString(c.Field) == "http-header" && c.HttpHeaderConfig != nil && aws.ToString(c.HttpHeaderConfig.HttpHeaderName) == h {
			return c.HttpHeaderConfig.Values
		}
	}
	return nil
}
