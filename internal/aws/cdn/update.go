package cdn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// update changes a distribution's configuration with mutate, which reports
// whether it changed anything. It reads the configuration and its ETag,
// and writes with If-Match: when someone else changed the distribution
// in between (PreconditionFailed), it reads again and mutates anew, at
// most UpdateAttempts times.
func (m *Manager) update(ctx context.Context, id string, mutate func(*cftypes.DistributionConfig) (bool, error)) (bool, error) {
	for attempt := 1; ; attempt++ {
		got, err := m.cf.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
		if err != nil {
			return false, fmt.Errorf("read CloudFront distribution %s: %w", id, err)
		}
		changed, err := mutate(got.DistributionConfig)
		if err != nil || !changed {
			return false, err
		}
		_, err = m.cf.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{
			Id: aws.String(id), IfMatch: got.ETag, DistributionConfig: got.DistributionConfig,
		})
		var stale *cftypes.PreconditionFailed
		if errors.As(err, &stale) && attempt < m.opts.UpdateAttempts {
			m.progressf("distribution %s changed meanwhile (ETag %s is stale); reading it again", id, aws.ToString(got.ETag))
			continue
		}
		if errors.As(err, &stale) {
			return false, fmt.Errorf("update CloudFront distribution %s: it changed under berth %d times in a row; try again when nobody else is changing it: %w", id, attempt, err)
		}
		if err != nil {
			return false, fmt.Errorf("update CloudFront distribution %s: %w", id, err)
		}
		return true, nil
	}
}

// waitDeployed polls the distribution until its status is Deployed,
// saying how long it has been waiting.
func (m *Manager) waitDeployed(ctx context.Context, id string) error {
	start := m.opts.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, m.opts.DeployTimeout, fmt.Errorf("%w: %s still not Deployed after %s", ErrNotDeployed, id, m.opts.DeployTimeout))
	defer cancel()
	last := ""
	for polls := 0; ; polls++ {
		out, err := m.cf.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
		if err != nil {
			if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
				return fmt.Errorf("%w; it goes on deploying: see berth edge show", c)
			}
			return fmt.Errorf("read CloudFront distribution %s: %w", id, err)
		}
		status := aws.ToString(out.Distribution.Status)
		if status == "Deployed" {
			m.progressf("distribution %s deployed (%s)", id, m.opts.Now().Sub(start).Round(time.Second))
			return nil
		}
		if status != last || polls%4 == 0 {
			m.progressf("distribution %s: %s (%s)", id, status, m.opts.Now().Sub(start).Round(time.Second))
			last = status
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; it goes on deploying: see berth edge show", context.Cause(ctx))
		case <-time.After(m.opts.PollInterval):
		}
	}
}
