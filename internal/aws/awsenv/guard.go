package awsenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// minGuardRequests is how many requests the guard needs in CloudWatch
// before it judges their 5XX share: a handful of errors in a quiet minute
// says little.
const minGuardRequests = 20

// answers reads from CloudWatch how many requests the new origin answered
// since from, and how many of them with a 5XX. CloudWatch counts by the
// minute, so a count since the switch is the count then less the one read
// just before it (baseline).
type answers func(ctx context.Context, from time.Time) (requests, errors float64, err error)

// baseline is what an answers read before the switch: the requests and
// errors of the switch's minute that came before it.
type baseline struct {
	from           time.Time
	requests, errs float64
}

// readBaseline reads the baseline of read, just before a switch. When
// CloudWatch cannot be read (throttling, no cloudwatch:GetMetricData) it
// says so and returns a nil answers: the guard then has the health probes
// alone.
func readBaseline(ctx context.Context, read answers, service string, p progress) (baseline, answers) {
	b := baseline{from: time.Now()}
	var err error
	if b.requests, b.errs, err = read(ctx, b.from); err != nil {
		p.phase("guard", "%s: warning: %v; the guard watches health alone", service, err)
		return b, nil
	}
	return b, read
}

// guard watches what now serves for opts.Guard and answers why it must be
// switched back ("" when it held): the share of failed health probes, or
// of 5XX answers in CloudWatch since the switch (once there are
// minGuardRequests), above opts.MaxErrorRate.
func (e *Env) guard(ctx context.Context, service, what string, opts MoveOptions, probe func(context.Context) (bool, string, error), read answers, base baseline, p progress) (string, error) {
	p.phase("guard", "%s: watching %s for %s (switch back above %.0f%% failed probes or 5XX answers)", service, what, opts.Guard, opts.MaxErrorRate*100)
	end := time.Now().Add(opts.Guard)
	n, bad := 0, 0
	var reqs, errs float64
	for {
		ok, detail, err := probe(ctx)
		if err != nil {
			return "", err
		}
		n++
		if !ok {
			bad++
		}
		if rate := float64(bad) / float64(n); rate > opts.MaxErrorRate {
			return fmt.Sprintf("%d of %d probes of %s failed (%.0f%% > %.0f%%; last: %s)", bad, n, what, rate*100, opts.MaxErrorRate*100, detail), nil
		}
		if read != nil {
			r, e, err := read(ctx, base.from)
			if err != nil {
				// Throttled or not allowed: the health probes guard alone.
				p.phase("guard", "%s: warning: %v; watching health alone", service, err)
				read = nil
			} else {
				reqs, errs = r-base.requests, e-base.errs
			}
		}
		if reqs >= minGuardRequests && errs/reqs > opts.MaxErrorRate {
			return fmt.Sprintf("%.0f of %.0f requests to %s answered 5XX (%.0f%% > %.0f%%, CloudWatch)", errs, reqs, what, 100*errs/reqs, opts.MaxErrorRate*100), nil
		}
		if !time.Now().Before(end) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(min(opts.GuardPoll, time.Until(end)+time.Millisecond)):
		}
	}
	p.phase("guard", "%s: %d of %d probes of %s failed, %.0f of %.0f requests answered 5XX: within %.0f%%", service, bad, n, what, errs, reqs, opts.MaxErrorRate*100)
	return "", nil
}

// albErrors reads a target group's requests and its targets' 5XX answers
// from AWS/ApplicationELB. (The load balancer's own 5XX, such as a 502 for
// a target that does not answer, exist per load balancer only, across all
// the app's services; the health probes see those targets.)
func (e *Env) albErrors(lbARN, tgARN string) answers {
	dims := []cwtypes.Dimension{
		{Name: aws.String("LoadBalancer"), Value: aws.String(arnSuffix(lbARN, ":loadbalancer/"))},
		{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/" + arnSuffix(tgARN, ":targetgroup/"))},
	}
	return e.metricSums("AWS/ApplicationELB", dims, "RequestCount", "HTTPCode_Target_5XX_Count")
}

// appRunnerErrors reads an App Runner service's requests and 5XX answers
// from AWS/AppRunner.
func (e *Env) appRunnerErrors(arn string) answers {
	name, id, _ := strings.Cut(arnSuffix(arn, ":service/"), "/")
	dims := []cwtypes.Dimension{{Name: aws.String("ServiceName"), Value: aws.String(name)}, {Name: aws.String("ServiceID"), Value: aws.String(id)}}
	return e.metricSums("AWS/AppRunner", dims, "Requests", "5xxStatusResponses")
}

// metricSums sums, over one-minute periods since from, the metric total
// and the metrics bad of namespace with dims, in one GetMetricData call.
func (e *Env) metricSums(namespace string, dims []cwtypes.Dimension, total string, bad ...string) answers {
	return func(ctx context.Context, from time.Time) (float64, float64, error) {
		var q []cwtypes.MetricDataQuery
		for i, m := range append([]string{total}, bad...) {
			q = append(q, cwtypes.MetricDataQuery{
				Id: aws.String(fmt.Sprintf("m%d", i)),
				MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String(namespace), MetricName: aws.String(m), Dimensions: dims},
					Period: aws.Int32(60), Stat: aws.String("Sum"),
				},
				ReturnData: aws.Bool(true),
			})
		}
		// Whole minutes around the switch: CloudWatch's periods start on
		// the minute.
		out, err := e.c.CloudWatch.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
			MetricDataQueries: q,
			StartTime:         aws.Time(from.Truncate(time.Minute)),
			EndTime:           aws.Time(time.Now().Add(time.Minute).Truncate(time.Minute).Add(time.Minute)),
		})
		if err != nil {
			return 0, 0, fmt.Errorf("read %s metrics from CloudWatch: %w", namespace, err)
		}
		var reqs, errs float64
		for _, r := range out.MetricDataResults {
			sum := 0.0
			for _, v := range r.Values {
				sum += v
			}
			if aws.ToString(r.Id) == "m0" {
				reqs += sum
			} else {
				errs += sum
			}
		}
		return reqs, errs, nil
	}
}

// arnSuffix is what follows the first sep in arn ("" without one).
func arnSuffix(arn, sep string) string {
	_, after, _ := strings.Cut(arn, sep)
	return after
}
