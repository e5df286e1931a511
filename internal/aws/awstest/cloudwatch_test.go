package awstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
)

// TestCloudWatchFake: GetMetricData through the SDK's own client (Smithy
// RPC v2 CBOR) sums what the test added for the metric and dimensions
// asked within the time range, and every answer has only members of
// botocore's GetMetricDataOutput, of the model's types.
func TestCloudWatchFake(t *testing.T) {
	d := json.NewDecoder(bytes.NewReader(awstest.BotocoreModel(t, "cloudwatch", "2010-08-01")))
	d.UseNumber()
	var model map[string]any
	require.NoError(t, d.Decode(&model))
	ops, _ := model["operations"].(map[string]any)
	for _, op := range awstest.CloudWatchServes {
		assert.Contains(t, ops, op, "the fake serves an operation CloudWatch does not have")
	}
	meta, _ := model["metadata"].(map[string]any)
	assert.Contains(t, fmt.Sprint(meta["protocols"]), "smithy-rpc-v2-cbor", "the protocol the fake speaks is one CloudWatch speaks")

	ctx := context.Background()
	p := awstest.UseProxy(t)
	fake := awstest.FakeCloudWatch(t, p)
	cl, err := clients.Load(ctx, "")
	require.NoError(t, err)
	tg := map[string]string{"LoadBalancer": "app/shop/1", "TargetGroup": "targetgroup/web/2"}
	fake.Add("AWS/ApplicationELB", "RequestCount", tg, 90)
	fake.Add("AWS/ApplicationELB", "RequestCount", tg, 10)
	fake.Add("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", tg, 7)
	fake.Add("AWS/ApplicationELB", "RequestCount", map[string]string{"LoadBalancer": "app/shop/1", "TargetGroup": "targetgroup/api/3"}, 1000)

	query := func(id, metric string) cwtypes.MetricDataQuery {
		var dims []cwtypes.Dimension
		for k, v := range tg {
			dims = append(dims, cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)})
		}
		return cwtypes.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(metric), Dimensions: dims},
			Period: aws.Int32(60), Stat: aws.String("Sum")}}
	}
	sum := func(from, to time.Time) map[string]float64 {
		out, err := cl.CloudWatch.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(from), EndTime: aws.Time(to),
			MetricDataQueries: []cwtypes.MetricDataQuery{query("reqs", "RequestCount"), query("errs", "HTTPCode_Target_5XX_Count"), query("elb", "HTTPCode_ELB_5XX_Count")},
		})
		require.NoError(t, err)
		got := map[string]float64{}
		for _, r := range out.MetricDataResults {
			assert.Equal(t, cwtypes.StatusCodeComplete, r.StatusCode)
			assert.Len(t, r.Timestamps, len(r.Values))
			for _, v := range r.Values {
				got[aws.ToString(r.Id)] += v
			}
		}
		return got
	}
	now := time.Now()
	assert.Equal(t, map[string]float64{"reqs": 100, "errs": 7}, sum(now.Add(-time.Minute), now.Add(time.Minute)))
	assert.Empty(t, sum(now.Add(-time.Hour), now.Add(-time.Minute)), "nothing before the points")

	mc := &modelCheck{shapes: model["shapes"].(map[string]any)}
	for i, b := range fake.Answers() {
		v, err := cbor.Decode(b)
		require.NoError(t, err)
		mc.check(fmt.Sprintf("answer %d", i), fromCBOR(v), "GetMetricDataOutput")
	}
	assert.Empty(t, mc.errs)
}

// fromCBOR turns a decoded CBOR value into what modelCheck reads: the
// shapes of encoding/json with numbers as json.Number (a timestamp, tag 1,
// as its epoch seconds).
func fromCBOR(v cbor.Value) any {
	switch x := v.(type) {
	case cbor.Map:
		m := map[string]any{}
		for k, e := range x {
			m[k] = fromCBOR(e)
		}
		return m
	case cbor.List:
		l := []any{}
		for _, e := range x {
			l = append(l, fromCBOR(e))
		}
		return l
	case cbor.String:
		return string(x)
	case cbor.Bool:
		return bool(x)
	case cbor.Uint:
		return json.Number(fmt.Sprint(uint64(x)))
	case cbor.Float64:
		return json.Number(fmt.Sprint(float64(x)))
	case *cbor.Tag:
		return fromCBOR(x.Value)
	}
	return fmt.Sprintf("%T", v)
}
