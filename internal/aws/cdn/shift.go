package cdn

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// MaxStagingPercent is the largest share CloudFront's continuous
// deployment sends to a staging distribution.
const MaxStagingPercent = 15

// Via names how a shift is carried out.
type Via string

// The two ways of a shift.
const (
	// ViaALB: both origins are berth services behind the app's load
	// balancer: the distribution is left as it is and the load balancer's
	// rule for the active service forwards a share to the other's target
	// groups (ALBShift says what awsenv must do).
	ViaALB Via = "alb-weighted-target-groups"
	// ViaStaging: a CloudFront continuous-deployment policy sends the share
	// to a staging distribution whose default origin is the new one.
	ViaStaging Via = "cloudfront-continuous-deployment"
)

// Shifted is a shift made or to make.
type Shifted struct {
	Entrypoint string  `json:"entrypoint"`
	Via        Via     `json:"via"`
	Active     string  `json:"active"`
	Origin     string  `json:"origin"`
	Percent    float64 `json:"percent"`
	// ALB is set with ViaALB: what awsenv must apply.
	ALB *ALBShift `json:"alb,omitempty"`
	// Staging is set with ViaStaging.
	Staging *Staging `json:"staging,omitempty"`
	// StagingDistributionID is the staging distribution (ViaStaging).
	StagingDistributionID string `json:"staging_distribution_id,omitempty"`
}

// ALBShift is a shift between two berth services on the load balancer:
// awsenv must change the action of the rule ALBRules keys "edge:From" to
// a forward to From's serving target group with weight 100-Percent and To's
// serving target group with weight Percent (ALB weights are integers
// 0-999; Percent is rounded), and set it back to From alone on a switch.
type ALBShift struct {
	Rule    string  `json:"rule"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Percent float64 `json:"percent"`
}

// Shift sends percent of an entrypoint's traffic to origin, the active
// origin keeping the rest. Between two berth services it only says what
// the load balancer must do (ViaALB); otherwise it uses a
// continuous-deployment staging distribution (ViaStaging), which CloudFront
// limits to 0 < percent <= 15: a larger share is refused with
// ErrShareRefused. Switch ends either.
func (m *Manager) Shift(ctx context.Context, name, origin string, percent float64) (*Shifted, error) {
	ep, id, err := m.mustFind(ctx, name)
	if err != nil {
		return nil, err
	}
	cur, err := m.live(ctx, name, id)
	if err != nil {
		return nil, err
	}
	res := &Shifted{Entrypoint: name, Active: cur.Active, Origin: origin, Percent: percent}
	if percent <= 0 || percent > 100 {
		return nil, fmt.Errorf("%w: a share is above 0 and at most 100%%, not %v%%; end a shift with berth edge switch", ErrShareRefused, percent)
	}
	if origin == cur.Active {
		return nil, fmt.Errorf("%w: %s is already the active origin of %s", ErrShareRefused, origin, name)
	}
	if IsService(origin) && IsService(cur.Active) {
		res.Via = ViaALB
		res.ALB = &ALBShift{Rule: "edge:" + cur.Active, From: cur.Active, To: origin, Percent: percent}
		return res, nil
	}
	if percent > MaxStagingPercent {
		return nil, fmt.Errorf("%w: %v%% to %s: CloudFront's continuous deployment sends at most %d%% to a staging distribution, and %s is not a berth service behind the load balancer; shift at most %d%%, or move everything with berth edge switch %s --to %s",
			ErrShareRefused, percent, origin, MaxStagingPercent, originWord(origin, cur.Active), MaxStagingPercent, name, origin)
	}
	res.Via = ViaStaging
	secret := ""
	if IsService(origin) {
		if secret, err = m.OriginSecret(ctx); err != nil {
			return nil, err
		}
	}
	weight := aws.Float32(float32(percent / 100))
	traffic := &cftypes.TrafficConfig{Type: cftypes.ContinuousDeploymentPolicyTypeSingleWeight,
		SingleWeightConfig: &cftypes.ContinuousDeploymentSingleWeightConfig{Weight: weight}}

	// The staging distribution: the one the attached policy names, or a
	// copy of the primary.
	var stagingID, stagingDomain, policyID string
	if cur.Staging != nil {
		policyID, stagingDomain = cur.Staging.PolicyID, cur.Staging.DomainName
		if stagingID, err = m.byDomain(ctx, stagingDomain); err != nil {
			return nil, err
		}
	}
	if stagingID == "" {
		primary, err := m.cf.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("read CloudFront distribution %s: %w", id, err)
		}
		cp, err := m.cf.CopyDistribution(ctx, &cloudfront.CopyDistributionInput{
			PrimaryDistributionId: aws.String(id), Staging: aws.Bool(true), IfMatch: primary.ETag,
			CallerReference: aws.String("berth-staging-" + name + "-" + strconv.FormatInt(m.opts.Now().UnixNano(), 36)),
		})
		if err != nil {
			return nil, fmt.Errorf("copy distribution %s of entrypoint %s to a staging distribution: %w", id, name, err)
		}
		stagingID, stagingDomain, policyID = aws.ToString(cp.Distribution.Id), aws.ToString(cp.Distribution.DomainName), ""
		m.progressf("entrypoint %s: staging distribution %s (%s) copied from %s", name, stagingID, stagingDomain, id)
	}
	if _, err := m.update(ctx, stagingID, func(dc *cftypes.DistributionConfig) (bool, error) {
		oid, changed, err := m.ensureOrigin(dc, ep, origin, secret)
		if err != nil {
			return false, err
		}
		if aws.ToString(dc.DefaultCacheBehavior.TargetOriginId) != oid {
			dc.DefaultCacheBehavior.TargetOriginId, changed = aws.String(oid), true
		}
		return changed, nil
	}); err != nil {
		return nil, fmt.Errorf("point staging distribution %s at %s: %w", stagingID, origin, err)
	}
	cfg := &cftypes.ContinuousDeploymentPolicyConfig{
		Enabled:                     aws.Bool(true),
		StagingDistributionDnsNames: &cftypes.StagingDistributionDnsNames{Quantity: aws.Int32(1), Items: []string{stagingDomain}},
		TrafficConfig:               traffic,
	}
	if policyID == "" {
		out, err := m.cf.CreateContinuousDeploymentPolicy(ctx, &cloudfront.CreateContinuousDeploymentPolicyInput{ContinuousDeploymentPolicyConfig: cfg})
		if err != nil {
			return nil, fmt.Errorf("create the continuous deployment policy of entrypoint %s: %w", name, err)
		}
		policyID = aws.ToString(out.ContinuousDeploymentPolicy.Id)
		if _, err := m.update(ctx, id, func(dc *cftypes.DistributionConfig) (bool, error) {
			if aws.ToString(dc.ContinuousDeploymentPolicyId) == policyID {
				return false, nil
			}
			dc.ContinuousDeploymentPolicyId = aws.String(policyID)
			return true, nil
		}); err != nil {
			return nil, fmt.Errorf("attach continuous deployment policy %s to %s: %w", policyID, id, err)
		}
	} else {
		got, err := m.cf.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: aws.String(policyID)})
		if err != nil {
			return nil, fmt.Errorf("read continuous deployment policy %s: %w", policyID, err)
		}
		if _, err := m.cf.UpdateContinuousDeploymentPolicy(ctx, &cloudfront.UpdateContinuousDeploymentPolicyInput{
			Id: aws.String(policyID), IfMatch: got.ETag, ContinuousDeploymentPolicyConfig: cfg,
		}); err != nil {
			return nil, fmt.Errorf("set the share of continuous deployment policy %s: %w", policyID, err)
		}
	}
	m.progressf("entrypoint %s: %v%% to %s through staging distribution %s; waiting for CloudFront to deploy it", name, percent, origin, stagingID)
	for _, d := range []string{stagingID, id} {
		if err := m.waitDeployed(ctx, d); err != nil {
			return nil, err
		}
	}
	res.StagingDistributionID = stagingID
	res.Staging = stagingOf(policyID, cfg)
	return res, nil
}

// originWord names the non-service end of a refused shift.
func originWord(origin, active string) string {
	if !IsService(origin) {
		return origin
	}
	return "the active origin " + active
}

// byDomain finds a distribution by its *.cloudfront.net name.
func (m *Manager) byDomain(ctx context.Context, domain string) (string, error) {
	return DistributionByDomain(ctx, m.cf, domain)
}

// DistributionByDomain is the ID of the distribution whose
// *.cloudfront.net name is domain, or "" when there is none.
func DistributionByDomain(ctx context.Context, cf *cloudfront.Client, domain string) (string, error) {
	p := cloudfront.NewListDistributionsPaginator(cf, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list CloudFront distributions: %w", err)
		}
		if page.DistributionList == nil {
			break
		}
		for _, d := range page.DistributionList.Items {
			if aws.ToString(d.DomainName) == domain {
				return aws.ToString(d.Id), nil
			}
		}
	}
	return "", nil
}
