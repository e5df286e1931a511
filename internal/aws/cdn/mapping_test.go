package cdn

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
)

func TestCachePolicyMapping(t *testing.T) {
	cases := []struct {
		name                string
		ep                  spec.Entrypoint
		def, max            int64
		cookies             cftypes.CachePolicyCookieBehavior
		cookieNames         []string
		query               cftypes.CachePolicyQueryStringBehavior
		headers             cftypes.CachePolicyHeaderBehavior
		gzip                bool
		unmappedContainsKey string
	}{
		{name: "no cache", ep: spec.Entrypoint{Name: "www"},
			cookies: cftypes.CachePolicyCookieBehaviorNone, query: cftypes.CachePolicyQueryStringBehaviorNone, headers: cftypes.CachePolicyHeaderBehaviorNone},
		{name: "compress without cache cannot compress", ep: spec.Entrypoint{Name: "www", Compress: true},
			cookies: cftypes.CachePolicyCookieBehaviorNone, query: cftypes.CachePolicyQueryStringBehaviorNone, headers: cftypes.CachePolicyHeaderBehaviorNone,
			unmappedContainsKey: "edge.www.compress"},
		{name: "cache with cookies and compression", ep: spec.Entrypoint{Name: "www", Compress: true,
			Cache: &spec.Cache{Enabled: true, DefaultTTL: 90 * time.Second, Key: &spec.CacheKey{Cookies: []string{"session", "cart"}}}},
			def: 90, max: 365 * 24 * 3600, cookies: cftypes.CachePolicyCookieBehaviorWhitelist, cookieNames: []string{"session", "cart"},
			query: cftypes.CachePolicyQueryStringBehaviorAll, headers: cftypes.CachePolicyHeaderBehaviorWhitelist, gzip: true},
		{name: "cache without default ttl", ep: spec.Entrypoint{Name: "www", Cache: &spec.Cache{Enabled: true}},
			max: 365 * 24 * 3600, cookies: cftypes.CachePolicyCookieBehaviorNone,
			query: cftypes.CachePolicyQueryStringBehaviorAll, headers: cftypes.CachePolicyHeaderBehaviorWhitelist,
			unmappedContainsKey: "edge.www.cache.default_ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := CachePolicy("shop", "prod", &tc.ep)
			assert.Equal(t, "berth-shop-prod-www", aws.ToString(c.Name))
			assert.Equal(t, tc.def, aws.ToInt64(c.DefaultTTL))
			assert.Equal(t, tc.max, aws.ToInt64(c.MaxTTL))
			assert.Zero(t, aws.ToInt64(c.MinTTL))
			p := c.ParametersInCacheKeyAndForwardedToOrigin
			assert.Equal(t, tc.cookies, p.CookiesConfig.CookieBehavior)
			if tc.cookieNames != nil {
				assert.Equal(t, tc.cookieNames, p.CookiesConfig.Cookies.Items)
				assert.EqualValues(t, len(tc.cookieNames), aws.ToInt32(p.CookiesConfig.Cookies.Quantity))
			}
			assert.Equal(t, tc.query, p.QueryStringsConfig.QueryStringBehavior)
			assert.Equal(t, tc.headers, p.HeadersConfig.HeaderBehavior)
			if tc.headers == cftypes.CachePolicyHeaderBehaviorWhitelist {
				assert.Equal(t, []string{"Authorization"}, p.HeadersConfig.Headers.Items)
			}
			assert.Equal(t, tc.gzip, aws.ToBool(p.EnableAcceptEncodingGzip))
			assert.Equal(t, tc.gzip, aws.ToBool(p.EnableAcceptEncodingBrotli))
			if aws.ToInt64(c.MaxTTL) == 0 {
				// CloudFront refuses a key or encodings on a policy that caches nothing.
				assert.False(t, aws.ToBool(p.EnableAcceptEncodingGzip))
				assert.Equal(t, cftypes.CachePolicyHeaderBehaviorNone, p.HeadersConfig.HeaderBehavior)
			}
			un := Unmapped(&tc.ep)
			if tc.unmappedContainsKey != "" {
				require.NotEmpty(t, un)
				assert.Contains(t, un[0], tc.unmappedContainsKey)
			} else {
				assert.Empty(t, un)
			}
		})
	}
}

func TestOriginIDsAndRefs(t *testing.T) {
	assert.Equal(t, "berth-web", OriginID("web"))
	assert.Equal(t, "berth-xyz.awsapprunner.com", OriginID("https://xyz.awsapprunner.com"))
	assert.Equal(t, "berth-legacy.example.com-base", OriginID("https://legacy.example.com/base/"))
	ep := &spec.Entrypoint{Origin: "web", Failover: &spec.Failover{Origin: "https://xyz.awsapprunner.com"},
		Routes: []spec.EdgeRoute{{Path: "/api", Origin: "api"}, {Path: "/x", Origin: "web"}, {Path: "/y"}}}
	assert.Equal(t, []string{"web", "https://xyz.awsapprunner.com", "api"}, OriginRefs(ep))

	m := &Manager{app: "shop", env: "prod", alb: ALB{DNSName: "alb.example.com"}}
	o, err := m.origin(ep, "https://xyz.awsapprunner.com/v1", "s")
	require.NoError(t, err)
	assert.Equal(t, "https://xyz.awsapprunner.com/v1", refOf(o), "an origin reads back as the reference it was made from")
	o, err = m.origin(ep, "web", "s")
	require.NoError(t, err)
	assert.Equal(t, "web", refOf(o))
	_, err = m.origin(ep, "http://plain.example.com", "s")
	require.ErrorIs(t, err, ErrOrigin)
	assert.Contains(t, err.Error(), "HTTPS only")
	_, err = m.origin(ep, "blog/web", "s")
	require.ErrorIs(t, err, ErrOrigin)
	_, err = (&Manager{}).origin(ep, "web", "s")
	require.ErrorIs(t, err, ErrOrigin, "no load balancer yet")
}

func TestCovers(t *testing.T) {
	assert.True(t, covers("www.example.com", "www.example.com"))
	assert.True(t, covers("*.example.com", "www.example.com"))
	assert.False(t, covers("*.example.com", "example.com"))
	assert.False(t, covers("*.example.com", "a.b.example.com"))
}

func TestReadTimeout(t *testing.T) {
	assert.EqualValues(t, 30, readTimeout(0))
	assert.EqualValues(t, 1, readTimeout(time.Millisecond))
	assert.EqualValues(t, 45, readTimeout(45*time.Second))
	assert.EqualValues(t, 60, readTimeout(5*time.Minute))
}
