package cdn_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

const albDNS = "berth-shop-prod-1234567890.eu-west-1.elb.amazonaws.com"

// world is one test's AWS: moto behind the proxy with the CloudFront fake,
// the clients, and an app of its own (moto is shared by the process).
type world struct {
	p   *awstest.Proxy
	cf  *awstest.CloudFront
	c   *clients.Clients
	sp  *spec.Spec
	m   *cdn.Manager
	out *bytes.Buffer
}

func setup(t *testing.T, yaml string) *world {
	t.Helper()
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, p.URL)
	w := &world{p: p, cf: awstest.FakeCloudFront(t, p), out: &bytes.Buffer{}}
	var err error
	w.c, err = clients.Load(context.Background(), "")
	require.NoError(t, err)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	app := "shop" + hex.EncodeToString(b)
	w.sp, err = spec.Parse("berth.yaml", []byte(strings.ReplaceAll(yaml, "APP", app)))
	require.NoError(t, err)
	w.manager(t)
	return w
}

func (w *world) manager(t *testing.T) {
	w.m = cdn.New(w.c, w.sp, "prod", cdn.ALB{DNSName: albDNS}, cdn.Options{
		PollInterval: 5 * time.Millisecond, DeployTimeout: 10 * time.Second, Progress: w.out,
	})
}

func (w *world) config(t *testing.T, id string) *cftypes.DistributionConfig {
	t.Helper()
	out, err := w.c.CloudFront.GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	require.NoError(t, err)
	return out.DistributionConfig
}

func origins(dc *cftypes.DistributionConfig) map[string]cftypes.Origin {
	out := map[string]cftypes.Origin{}
	for _, o := range dc.Origins.Items {
		out[aws.ToString(o.Id)] = o
	}
	return out
}

func headers(o cftypes.Origin) map[string]string {
	out := map[string]string{}
	for _, h := range o.CustomHeaders.Items {
		out[aws.ToString(h.HeaderName)] = aws.ToString(h.HeaderValue)
	}
	return out
}

// noDNS asserts berth made no Route 53 call: an entrypoint's point is that
// its DNS never changes.
func (w *world) noDNS(t *testing.T) {
	t.Helper()
	for _, op := range w.p.Calls() {
		assert.False(t, strings.HasPrefix(op, "route53"), "berth called %s", op)
	}
}

const appYAML = `
app: APP
services:
  web: {image: web:1, port: 8080}
  api: {image: api:1, port: 9000}
edge:
  www:
    hosts: [www.APP.example.com]
    origin: web
    failover: {url: "https://xyz.awsapprunner.com"}
    cache: {enabled: true, default_ttl: 60s, key: {cookies: [session]}}
    compress: true
    timeout: 45s
`

// TestCreate: an entrypoint becomes a distribution whose origins are the
// app's load balancer (with the secret header berth keeps in Secrets
// Manager) and the App Runner URL, whose default behavior targets the
// active origin through berth's cache policy, tagged and named for the
// entrypoint; while the certificate is pending it has no aliases. A second
// Apply changes nothing.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.False(t, res.Adopted)
	assert.Contains(t, res.DomainName, ".cloudfront.net")
	require.NotNil(t, res.Certificate)
	assert.Equal(t, cdn.CertPending, res.Certificate.Status)
	assert.True(t, res.Certificate.Requested)
	require.NotEmpty(t, res.Certificate.Records, "the DNS validation records to print")
	assert.Equal(t, "CNAME", res.Certificate.Records[0].Type)

	dc := w.config(t, res.DistributionID)
	assert.Equal(t, "berth: entrypoint www of "+w.sp.App+" (prod)", aws.ToString(dc.Comment))
	os := origins(dc)
	require.Len(t, os, 2)
	alb := os["berth-web"]
	assert.Equal(t, albDNS, aws.ToString(alb.DomainName))
	assert.Equal(t, cftypes.OriginProtocolPolicyHttpOnly, alb.CustomOriginConfig.OriginProtocolPolicy)
	assert.EqualValues(t, 45, aws.ToInt32(alb.CustomOriginConfig.OriginReadTimeout))
	secret, err := w.c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(cdn.SecretName("prod", w.sp.App))})
	require.NoError(t, err)
	assert.Len(t, aws.ToString(secret.SecretString), 64)
	assert.Equal(t, map[string]string{cdn.HeaderOriginSecret: aws.ToString(secret.SecretString), cdn.HeaderService: "web"}, headers(alb))
	ar := os["berth-xyz.awsapprunner.com"]
	assert.Equal(t, "xyz.awsapprunner.com", aws.ToString(ar.DomainName))
	assert.Equal(t, cftypes.OriginProtocolPolicyHttpsOnly, ar.CustomOriginConfig.OriginProtocolPolicy)
	assert.Empty(t, headers(ar), "the secret goes to the load balancer only")

	b := dc.DefaultCacheBehavior
	assert.Equal(t, "berth-web", aws.ToString(b.TargetOriginId))
	assert.Equal(t, cftypes.ViewerProtocolPolicyRedirectToHttps, b.ViewerProtocolPolicy)
	assert.Equal(t, cdn.OriginRequestPolicyAllViewerExceptHost, aws.ToString(b.OriginRequestPolicyId))
	assert.True(t, aws.ToBool(b.Compress))
	pol, err := w.c.CloudFront.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: b.CachePolicyId})
	require.NoError(t, err)
	pc := pol.CachePolicy.CachePolicyConfig
	assert.Equal(t, "berth-"+w.sp.App+"-prod-www", aws.ToString(pc.Name))
	assert.EqualValues(t, 60, aws.ToInt64(pc.DefaultTTL))
	assert.Equal(t, []string{"session"}, pc.ParametersInCacheKeyAndForwardedToOrigin.CookiesConfig.Cookies.Items)
	assert.True(t, aws.ToBool(pc.ParametersInCacheKeyAndForwardedToOrigin.EnableAcceptEncodingBrotli))
	assert.Zero(t, aws.ToInt32(dc.Aliases.Quantity), "no aliases before the certificate is issued")

	d, err := w.c.CloudFront.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(res.DistributionID)})
	require.NoError(t, err)
	tags, err := w.c.CloudFront.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: d.Distribution.ARN})
	require.NoError(t, err)
	got := map[string]string{}
	for _, tg := range tags.Tags.Items {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	assert.Equal(t, map[string]string{cdn.TagApp: w.sp.App, cdn.TagEnv: "prod", cdn.TagEntrypoint: "www"}, got)

	again, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	assert.Equal(t, res.DistributionID, again.DistributionID, "found again by its comment and tags")
	assert.False(t, again.Created)
	assert.False(t, again.Changed, "nothing to change")
	assert.NotContains(t, w.out.String(), "updated", "neither the distribution nor its cache policy")

	w.sp.Edge["www"].Cache.DefaultTTL = 2 * time.Minute
	_, err = w.m.Apply(ctx, "www")
	require.NoError(t, err)
	pol, err = w.c.CloudFront.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: b.CachePolicyId})
	require.NoError(t, err)
	assert.EqualValues(t, 120, aws.ToInt64(pol.CachePolicy.CachePolicyConfig.DefaultTTL), "the same policy, updated")
	assert.Empty(t, w.cf.Updates())
	assert.Equal(t, 1, w.p.Count("acm:RequestCertificate"), "the pending certificate is found again, not requested twice")
	w.noDNS(t)
}

// TestAdopt: a distribution the team made keeps its own origin (found by
// address, not duplicated), comment, aliases and active origin; berth adds
// its origins and tags, and a switch moves the default origin between the
// team's origin and berth's.
func TestAdopt(t *testing.T) {
	ctx := context.Background()
	w := setup(t, `
app: APP
services:
  web: {image: web:1, port: 8080}
edge:
  www:
    hosts: [www.APP.example.com]
    url: https://xyz.awsapprunner.com
    failover: {origin: web}
`)
	made, err := w.c.CloudFront.CreateDistribution(ctx, &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: aws.String("team-" + w.sp.App), Comment: aws.String("the team's"), Enabled: aws.Bool(true),
		Aliases: &cftypes.Aliases{Quantity: aws.Int32(1), Items: []string{"www." + w.sp.App + ".example.com"}},
		Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{
			Id: aws.String("apprunner"), DomainName: aws.String("xyz.awsapprunner.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly},
		}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("apprunner"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyAllowAll,
			CachePolicyId: aws.String("658327ea-f89d-4fab-a63d-7e88639e58f6")},
	}})
	require.NoError(t, err)
	id := aws.ToString(made.Distribution.Id)
	w.sp.Edge["www"].Distribution = id
	w.manager(t)

	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	assert.True(t, res.Adopted)
	assert.False(t, res.Created)
	assert.Nil(t, res.Certificate, "an adopted distribution keeps its certificate")
	dc := w.config(t, id)
	os := origins(dc)
	assert.Len(t, os, 2)
	assert.Contains(t, os, "apprunner", "the team's origin is kept, not duplicated")
	assert.Contains(t, os, "berth-web")
	assert.Equal(t, "apprunner", aws.ToString(dc.DefaultCacheBehavior.TargetOriginId), "adoption does not move traffic")
	assert.Equal(t, "658327ea-f89d-4fab-a63d-7e88639e58f6", aws.ToString(dc.DefaultCacheBehavior.CachePolicyId), "no cache: in the spec, the team's policy stays")
	assert.Equal(t, cftypes.ViewerProtocolPolicyAllowAll, dc.DefaultCacheBehavior.ViewerProtocolPolicy)
	assert.Equal(t, "the team's", aws.ToString(dc.Comment))
	assert.Equal(t, []string{"www." + w.sp.App + ".example.com"}, dc.Aliases.Items)

	ep, err := w.m.Switch(ctx, "www", "web")
	require.NoError(t, err)
	assert.Equal(t, "web", ep.Active)

	w.sp.Edge["www"].Distribution = "E0000000000000"
	w.manager(t)
	_, err = w.m.Apply(ctx, "www")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "edge.www.distribution: CloudFront distribution E0000000000000 does not exist")
	w.sp.Edge["www"].Distribution = id
	w.manager(t)

	ep, err = w.m.Switch(ctx, "www", "https://xyz.awsapprunner.com")
	require.NoError(t, err)
	assert.Equal(t, "https://xyz.awsapprunner.com", ep.Active)
	assert.Equal(t, "apprunner", aws.ToString(w.config(t, id).DefaultCacheBehavior.TargetOriginId))
	w.noDNS(t)
}

// TestSwitch: the default origin moves with one UpdateDistribution sent
// with the ETag read; a change by someone else in between (stale ETag,
// PreconditionFailed) is read again and retried; berth waits until the
// distribution is Deployed; no DNS call is made.
func TestSwitch(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	id := res.DistributionID

	w.cf.InProgressPolls(3)
	w.cf.ConcurrentChange(1)
	polls := w.p.Count("cloudfront:")
	ep, err := w.m.Switch(ctx, "www", "https://xyz.awsapprunner.com")
	require.NoError(t, err)
	assert.Equal(t, "https://xyz.awsapprunner.com", ep.Active)
	assert.Equal(t, "Deployed", ep.Status)
	assert.Equal(t, "berth-xyz.awsapprunner.com", aws.ToString(w.config(t, id).DefaultCacheBehavior.TargetOriginId))

	ups := w.cf.Updates()
	require.Len(t, ups, 2)
	assert.Equal(t, 412, ups[0].Status, "the first try carries the ETag someone else made stale")
	assert.NotEmpty(t, ups[0].IfMatch)
	assert.Equal(t, 200, ups[1].Status)
	assert.NotEqual(t, ups[0].IfMatch, ups[1].IfMatch, "the retry read the new ETag")
	assert.Contains(t, w.out.String(), "changed meanwhile")
	assert.Contains(t, w.out.String(), "InProgress", "the wait says where it is")
	assert.Contains(t, w.out.String(), "deployed")
	assert.GreaterOrEqual(t, w.p.Count("cloudfront:")-polls, 2+2+4, "two reads, two writes, three InProgress polls and the Deployed one")

	// A switch to the origin already active changes nothing.
	_, err = w.m.Switch(ctx, "www", "https://xyz.awsapprunner.com")
	require.NoError(t, err)
	assert.Len(t, w.cf.Updates(), 2)

	// Someone else changing it on every read: berth gives up, saying so.
	w.cf.ConcurrentChange(100)
	_, err = w.m.Switch(ctx, "www", "web")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed under berth")
	w.cf.ConcurrentChange(0)

	// A switch to a service the distribution has no origin for adds it.
	ep, err = w.m.Switch(ctx, "www", "api")
	require.NoError(t, err)
	assert.Equal(t, "api", ep.Active)
	assert.Equal(t, map[string]string{cdn.HeaderOriginSecret: headers(origins(w.config(t, id))["berth-web"])[cdn.HeaderOriginSecret], cdn.HeaderService: "api"},
		headers(origins(w.config(t, id))["berth-api"]))
	w.noDNS(t)
}

// TestSwitchTimesOut: a distribution that never deploys ends the wait
// with a message, not a hang.
func TestSwitchTimesOut(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	_, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	w.cf.InProgressPolls(1_000_000)
	w.m = cdn.New(w.c, w.sp, "prod", cdn.ALB{DNSName: albDNS}, cdn.Options{PollInterval: 5 * time.Millisecond, DeployTimeout: 200 * time.Millisecond})
	_, err = w.m.Switch(ctx, "www", "api")
	require.ErrorIs(t, err, cdn.ErrNotDeployed)
	assert.Contains(t, err.Error(), "berth edge show")
}

// TestInvalidateListShow: invalidations are made with unique caller
// references; ls and show read the live distribution.
func TestInvalidateListShow(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	_, err := w.m.List(ctx)
	require.NoError(t, err)
	_, err = w.m.Show(ctx, "www")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no CloudFront distribution yet")
	_, err = w.m.Show(ctx, "nope")
	require.ErrorIs(t, err, cdn.ErrUnknownEntrypoint)

	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	inv1, err := w.m.Invalidate(ctx, "www", []string{"/index.html", "/img/*"})
	require.NoError(t, err)
	inv2, err := w.m.Invalidate(ctx, "www", nil)
	require.NoError(t, err)
	assert.NotEqual(t, inv1.ID, inv2.ID, "two invalidations, not one answered twice")
	list, err := w.c.CloudFront.ListInvalidations(ctx, &cloudfront.ListInvalidationsInput{DistributionId: aws.String(res.DistributionID)})
	require.NoError(t, err)
	assert.Len(t, list.InvalidationList.Items, 2)
	_, err = w.m.Invalidate(ctx, "www", []string{"index.html"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "start with /")

	eps, err := w.m.List(ctx)
	require.NoError(t, err)
	require.Len(t, eps, 1)
	ep := eps[0]
	assert.Equal(t, res.DistributionID, ep.DistributionID)
	assert.Equal(t, res.DomainName, ep.DomainName)
	assert.Equal(t, "web", ep.Active)
	assert.Equal(t, "Deployed", ep.Status)
	require.Len(t, ep.Origins, 2)
	for _, o := range ep.Origins {
		assert.Equal(t, o.Ref == "web", o.Active, o.Ref)
		assert.True(t, o.Berth)
	}
}

// TestShift: between two services the share is the load balancer's
// (nothing changes on CloudFront); to a URL it is a continuous-deployment
// staging distribution up to CloudFront's 15 %, refused above with why; a
// switch ends it.
func TestShift(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)

	s, err := w.m.Shift(ctx, "www", "api", 30)
	require.NoError(t, err)
	assert.Equal(t, cdn.ViaALB, s.Via)
	assert.Equal(t, &cdn.ALBShift{Rule: "edge:web", From: "web", To: "api", Percent: 30}, s.ALB)
	assert.Empty(t, w.cf.Updates(), "an ALB shift leaves the distribution alone")

	_, err = w.m.Shift(ctx, "www", "https://xyz.awsapprunner.com", 20)
	require.ErrorIs(t, err, cdn.ErrShareRefused)
	assert.Contains(t, err.Error(), "at most 15%")
	assert.Empty(t, w.cf.Updates())

	s, err = w.m.Shift(ctx, "www", "https://xyz.awsapprunner.com", 10)
	require.NoError(t, err)
	assert.Equal(t, cdn.ViaStaging, s.Via)
	require.NotNil(t, s.Staging)
	assert.InDelta(t, 10, s.Staging.Percent, 0.01)
	staging := s.StagingDistributionID
	require.NotEmpty(t, staging)
	sd, err := w.c.CloudFront.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(staging)})
	require.NoError(t, err)
	assert.True(t, aws.ToBool(sd.Distribution.DistributionConfig.Staging))
	assert.Equal(t, "berth-xyz.awsapprunner.com", aws.ToString(sd.Distribution.DistributionConfig.DefaultCacheBehavior.TargetOriginId))
	primary := w.config(t, res.DistributionID)
	assert.Equal(t, s.Staging.PolicyID, aws.ToString(primary.ContinuousDeploymentPolicyId))
	assert.Equal(t, "berth-web", aws.ToString(primary.DefaultCacheBehavior.TargetOriginId), "the primary keeps its origin")

	ep, err := w.m.Show(ctx, "www")
	require.NoError(t, err)
	require.NotNil(t, ep.Staging)
	assert.InDelta(t, 10, ep.Staging.Percent, 0.01)
	assert.Equal(t, sd.Distribution.DomainName, aws.String(ep.Staging.DomainName))

	s, err = w.m.Shift(ctx, "www", "https://xyz.awsapprunner.com", 5)
	require.NoError(t, err)
	assert.Equal(t, staging, s.StagingDistributionID, "the same staging distribution, its policy's share changed")
	assert.InDelta(t, 5, s.Staging.Percent, 0.01)

	policy := s.Staging.PolicyID
	ep, err = w.m.Switch(ctx, "www", "https://xyz.awsapprunner.com")
	require.NoError(t, err)
	assert.Nil(t, ep.Staging, "a switch ends the shift")
	assert.Equal(t, "https://xyz.awsapprunner.com", ep.Active)
	_, err = w.c.CloudFront.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: aws.String(policy)})
	assert.ErrorContains(t, err, "NoSuchContinuousDeploymentPolicy", "the ended shift's policy is deleted, not left over")

	w.noDNS(t)
}

// TestRotateOriginSecret: the load balancer accepts the old and the new
// secret while the distributions move to the new one, then only the new.
func TestRotateOriginSecret(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	old, err := w.m.OriginSecret(ctx)
	require.NoError(t, err)
	var accepted [][]string
	finished, err := w.m.RotateOriginSecret(ctx, func(_ context.Context, v []string) error {
		accepted = append(accepted, v)
		return nil
	})
	require.NoError(t, err)
	assert.False(t, finished, "there was no rotation to finish")
	now, err := w.m.OriginSecret(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, old, now)
	assert.Equal(t, [][]string{{old, now}, {now}}, accepted)
	assert.Equal(t, now, headers(origins(w.config(t, res.DistributionID))["berth-web"])[cdn.HeaderOriginSecret])

	rules := cdn.ALBRules(w.sp, []string{now})
	require.Len(t, rules, 2, "one rule per service a switch may name")
	assert.Equal(t, "edge:web", rules[0].Key)
	assert.Equal(t, "edge:api", rules[1].Key)
	assert.Equal(t, []string{"api"}, rules[1].Conditions[1].HttpHeaderConfig.Values)
	assert.Equal(t, []string{now}, rules[0].Conditions[0].HttpHeaderConfig.Values)
	assert.Equal(t, cdn.HeaderOriginSecret, aws.ToString(rules[0].Conditions[0].HttpHeaderConfig.HttpHeaderName))
	values, err := w.m.AcceptedSecrets(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{now}, values, "no rotation under way")
}

// TestRotateOriginSecretCutOff: a rotation cut off before or after the
// distributions were told the new value leaves the load balancer (and any
// deploy meanwhile, through AcceptedSecrets) accepting every value a
// distribution may send; the next rotation finishes it first.
func TestRotateOriginSecretCutOff(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	sent := func() string {
		return headers(origins(w.config(t, res.DistributionID))["berth-web"])[cdn.HeaderOriginSecret]
	}
	cut := errors.New("cut off")
	for _, c := range []struct {
		name  string
		at    int  // the accept call that fails (1: old and new, 2: the new alone)
		moved bool // whether the distribution sends the new value by then
	}{{"before the new value", 1, false}, {"after the distributions", 2, true}} {
		t.Run(c.name, func(t *testing.T) {
			old, err := w.m.OriginSecret(ctx)
			require.NoError(t, err)
			var calls int
			var pair []string
			_, err = w.m.RotateOriginSecret(ctx, func(_ context.Context, v []string) error {
				calls++
				if calls == 1 {
					pair = v
				}
				if calls == c.at {
					return cut
				}
				return nil
			})
			require.ErrorIs(t, err, cut)
			values, err := w.m.AcceptedSecrets(ctx)
			require.NoError(t, err)
			assert.Contains(t, values, sent(), "the value the distribution sends stays accepted")
			assert.Contains(t, values, old)
			if c.moved {
				assert.Equal(t, pair[1], sent())
				assert.Equal(t, pair, values)
			} else {
				assert.Equal(t, old, sent())
				assert.Equal(t, []string{old}, values)
			}

			var accepted [][]string
			finished, err := w.m.RotateOriginSecret(ctx, func(_ context.Context, v []string) error {
				// Each change of the load balancer's values keeps the
				// one the distribution sends now.
				assert.Contains(t, v, sent(), "never refused what was sent")
				accepted = append(accepted, v)
				return nil
			})
			require.NoError(t, err)
			assert.True(t, finished)
			now, err := w.m.OriginSecret(ctx)
			require.NoError(t, err)
			assert.Equal(t, now, sent())
			assert.Equal(t, []string{now}, accepted[len(accepted)-1])
			values, err = w.m.AcceptedSecrets(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{now}, values)
		})
	}
}

// TestCertificateIssued: an issued certificate covering the hosts (a
// wildcard here) is used, no new one is requested, and the aliases are set
// with it.
func TestCertificateIssued(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	certPEM, keyPEM := selfSigned(t, "*."+w.sp.App+".example.com")
	imp, err := w.c.ACM.ImportCertificate(ctx, &acm.ImportCertificateInput{Certificate: certPEM, PrivateKey: keyPEM})
	require.NoError(t, err)

	c, err := w.m.Certificate(ctx, []string{"www." + w.sp.App + ".example.com"})
	require.NoError(t, err)
	assert.Equal(t, cdn.CertIssued, c.Status)
	assert.Equal(t, aws.ToString(imp.CertificateArn), c.ARN)
	assert.Empty(t, c.Records)

	res, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	assert.Equal(t, 0, w.p.Count("acm:RequestCertificate"))
	dc := w.config(t, res.DistributionID)
	assert.Equal(t, []string{"www." + w.sp.App + ".example.com"}, dc.Aliases.Items)
	assert.Equal(t, c.ARN, aws.ToString(dc.ViewerCertificate.ACMCertificateArn))
	assert.Equal(t, cftypes.SSLSupportMethodSniOnly, dc.ViewerCertificate.SSLSupportMethod)

	// A host the certificate does not cover gets a request of its own.
	c, err = w.m.Certificate(ctx, []string{"www." + w.sp.App + ".example.com", w.sp.App + ".example.com"})
	require.NoError(t, err)
	assert.True(t, c.Requested)
	assert.Equal(t, cdn.CertPending, c.Status)
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestRotateOriginSecretDuringAShift: a shift's staging distribution (a
// copy of the primary, with its service origins and their secret header)
// is given the new value too before the load balancer drops the old one.
func TestRotateOriginSecretDuringAShift(t *testing.T) {
	ctx := context.Background()
	w := setup(t, appYAML)
	_, err := w.m.Apply(ctx, "www")
	require.NoError(t, err)
	s, err := w.m.Shift(ctx, "www", "https://xyz.awsapprunner.com", 10)
	require.NoError(t, err)
	old, err := w.m.OriginSecret(ctx)
	require.NoError(t, err)
	require.Equal(t, old, headers(origins(w.config(t, s.StagingDistributionID))["berth-web"])[cdn.HeaderOriginSecret], "the staging copy sends the secret")

	_, err = w.m.RotateOriginSecret(ctx, func(context.Context, []string) error { return nil })
	require.NoError(t, err)
	now, err := w.m.OriginSecret(ctx)
	require.NoError(t, err)
	assert.Equal(t, now, headers(origins(w.config(t, s.StagingDistributionID))["berth-web"])[cdn.HeaderOriginSecret], "the staging distribution still sends the old value")
}
