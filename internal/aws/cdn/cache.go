package cdn

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/berth-dev/berth/internal/spec"
)

// OriginRequestPolicyAllViewerExceptHost is AWS's managed origin request
// policy "Managed-AllViewerExceptHostHeader": every viewer header, cookie
// and query string goes to the origin, but not the Host, so the origin
// sees its own name (App Runner and the load balancer route by it). The
// cache policy decides only the cache key.
const OriginRequestPolicyAllViewerExceptHost = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

// maxTTL is the longest CloudFront keeps an answer that says how long it
// may be kept (a year, spec.MaxCacheTTL).
var maxTTL = int64(spec.MaxCacheTTL / time.Second)

// CachePolicyName is the name of an entrypoint's cache policy.
func CachePolicyName(app, env, entrypoint string) string {
	n := "berth-" + app + "-" + env + "-" + entrypoint
	if len(n) > 128 {
		n = n[:128]
	}
	return n
}

// CachePolicy maps an entrypoint's cache: and compress: to a CloudFront
// cache policy:
//
//	cache off           TTLs 0: nothing is stored, the key is empty (CloudFront
//	                    allows no key and no compression encodings then)
//	cache on            min 0, max a year, default default_ttl (0: an answer
//	                    that says nothing about its freshness is not kept)
//	key: the URL        all query strings are in the key, as the local edge's
//	cache.key.cookies   the listed cookies (whitelist), else none
//	Authorization       in the key when caching: each credential its own
//	                    entries (CloudFront forwards it only from the key)
//	compress            gzip and brotli normalised in the key (needs cache on)
func CachePolicy(app, env string, ep *spec.Entrypoint) *cftypes.CachePolicyConfig {
	c := &cftypes.CachePolicyConfig{
		Name:    aws.String(CachePolicyName(app, env, ep.Name)),
		Comment: aws.String("berth: cache of entrypoint " + ep.Name + " of " + app + " (" + env + ")"),
		MinTTL:  aws.Int64(0), DefaultTTL: aws.Int64(0), MaxTTL: aws.Int64(0),
		ParametersInCacheKeyAndForwardedToOrigin: &cftypes.ParametersInCacheKeyAndForwardedToOrigin{
			EnableAcceptEncodingGzip:   aws.Bool(false),
			EnableAcceptEncodingBrotli: aws.Bool(false),
			CookiesConfig:              &cftypes.CachePolicyCookiesConfig{CookieBehavior: cftypes.CachePolicyCookieBehaviorNone},
			HeadersConfig:              &cftypes.CachePolicyHeadersConfig{HeaderBehavior: cftypes.CachePolicyHeaderBehaviorNone},
			QueryStringsConfig:         &cftypes.CachePolicyQueryStringsConfig{QueryStringBehavior: cftypes.CachePolicyQueryStringBehaviorNone},
		},
	}
	if ep.Cache == nil || !ep.Cache.Enabled {
		return c
	}
	p := c.ParametersInCacheKeyAndForwardedToOrigin
	c.MaxTTL = aws.Int64(maxTTL)
	c.DefaultTTL = aws.Int64(int64(ep.Cache.DefaultTTL / time.Second))
	p.QueryStringsConfig.QueryStringBehavior = cftypes.CachePolicyQueryStringBehaviorAll
	p.HeadersConfig = &cftypes.CachePolicyHeadersConfig{HeaderBehavior: cftypes.CachePolicyHeaderBehaviorWhitelist,
		Headers: &cftypes.Headers{Quantity: aws.Int32(1), Items: []string{"Authorization"}}}
	if k := ep.Cache.Key; k != nil && len(k.Cookies) > 0 {
		p.CookiesConfig = &cftypes.CachePolicyCookiesConfig{CookieBehavior: cftypes.CachePolicyCookieBehaviorWhitelist,
			Cookies: &cftypes.CookieNames{Quantity: aws.Int32(int32(len(k.Cookies))), Items: append([]string(nil), k.Cookies...)}}
	}
	p.EnableAcceptEncodingGzip = aws.Bool(ep.Compress)
	p.EnableAcceptEncodingBrotli = aws.Bool(ep.Compress)
	return c
}

// Unmapped lists the entrypoint's keys CloudFront does not carry out as
// the local edge does, one line each with its spec path and why, for the
// caller to print (or refuse).
func Unmapped(ep *spec.Entrypoint) []string {
	p := "edge." + ep.Name
	var out []string
	if ep.Failover != nil {
		out = append(out, p+".failover: not carried to CloudFront yet (an origin group would); the failover origin is added as an origin to switch to")
	}
	if len(ep.Routes) > 0 {
		out = append(out, p+".routes: per-path origins and controls are not carried to CloudFront yet; their origins are added as origins to switch to")
	}
	if ep.Headers != nil {
		out = append(out, p+".headers: response headers are not set by CloudFront yet (a response headers policy would)")
	}
	if ep.HSTS > 0 {
		out = append(out, p+".hsts: not sent by CloudFront yet (a response headers policy would)")
	}
	if ep.MaxBody > 0 {
		out = append(out, p+".max_body: CloudFront has no request body limit of its own; the origin must enforce it")
	}
	if len(ep.ErrorPages) > 0 {
		out = append(out, p+".error_pages: CloudFront serves error pages from an origin path, not a file of the spec; not carried")
	}
	if ep.Timeout > 60*time.Second {
		out = append(out, p+".timeout: CloudFront waits at most 60s for an origin without a quota increase; 60s is used")
	}
	if ep.Compress && (ep.Cache == nil || !ep.Cache.Enabled) {
		out = append(out, p+".compress: CloudFront compresses only with caching on (a cache policy with TTL 0 takes no encodings); the origin must compress")
	}
	if ep.Cache != nil && ep.Cache.Enabled && ep.Cache.DefaultTTL == 0 {
		out = append(out, p+".cache.default_ttl: 0 keeps nothing that says nothing about its freshness on CloudFront (no RFC 9111 heuristic)")
	}
	return out
}

// ensureCachePolicy makes or updates the entrypoint's cache policy and
// returns its ID.
func (m *Manager) ensureCachePolicy(ctx context.Context, ep *spec.Entrypoint) (string, error) {
	want := CachePolicy(m.app, m.env, ep)
	name := aws.ToString(want.Name)
	var marker *string
	for {
		out, err := m.cf.ListCachePolicies(ctx, &cloudfront.ListCachePoliciesInput{Type: cftypes.CachePolicyTypeCustom, Marker: marker})
		if err != nil {
			return "", fmt.Errorf("list CloudFront cache policies: %w", err)
		}
		if out.CachePolicyList == nil {
			break
		}
		for _, s := range out.CachePolicyList.Items {
			if s.CachePolicy == nil || s.CachePolicy.CachePolicyConfig == nil || aws.ToString(s.CachePolicy.CachePolicyConfig.Name) != name {
				continue
			}
			id := aws.ToString(s.CachePolicy.Id)
			if reflect.DeepEqual(s.CachePolicy.CachePolicyConfig, want) {
				return id, nil
			}
			got, err := m.cf.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: aws.String(id)})
			if err != nil {
				return "", fmt.Errorf("read cache policy %s: %w", name, err)
			}
			if _, err := m.cf.UpdateCachePolicy(ctx, &cloudfront.UpdateCachePolicyInput{Id: aws.String(id), IfMatch: got.ETag, CachePolicyConfig: want}); err != nil {
				return "", fmt.Errorf("update cache policy %s: %w", name, err)
			}
			m.progressf("cache policy %s updated", name)
			return id, nil
		}
		if out.CachePolicyList.NextMarker == nil {
			break
		}
		marker = out.CachePolicyList.NextMarker
	}
	out, err := m.cf.CreateCachePolicy(ctx, &cloudfront.CreateCachePolicyInput{CachePolicyConfig: want})
	if err != nil {
		return "", fmt.Errorf("create cache policy %s: %w", name, err)
	}
	m.progressf("cache policy %s created", name)
	return aws.ToString(out.CachePolicy.Id), nil
}
