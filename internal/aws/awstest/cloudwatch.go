package awstest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch is a fake of CloudWatch's GetMetricData, the one metrics call
// berth makes (the move's guard). moto 5.2.1 speaks only the query
// protocol, and the SDK calls CloudWatch in Smithy RPC v2 CBOR, so the
// fake answers that protocol itself. A test adds the sums it wants the
// guard to read (Add); GetMetricData returns, per query, the sums of its
// metric and dimensions within the asked time range, one value per sum.
type CloudWatch struct {
	mu      sync.Mutex
	points  []metricPoint
	answers [][]byte
}

type metricPoint struct {
	namespace, metric string
	dims              map[string]string
	at                time.Time
	sum               float64
}

// FakeCloudWatch installs the CloudWatch fake on p ("monitoring:*").
func FakeCloudWatch(t testing.TB, p *Proxy) *CloudWatch {
	t.Helper()
	f := &CloudWatch{}
	p.Handle("monitoring:*", f.serve)
	return f
}

// Add records sum for metric of namespace with dims, at the current time.
func (f *CloudWatch) Add(namespace, metric string, dims map[string]string, sum float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.points = append(f.points, metricPoint{namespace, metric, dims, time.Now(), sum})
}

// CloudWatchServes are the operations the fake answers (checked against
// botocore's model by the tests).
var CloudWatchServes = []string{"GetMetricData"}

// Answers are the CBOR bodies of the fake's answers so far, for a test to
// check against the model.
func (f *CloudWatch) Answers() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.answers...)
}

func (f *CloudWatch) serve(c *Call) *Response {
	r := f.answer(c)
	f.mu.Lock()
	f.answers = append(f.answers, r.Body)
	f.mu.Unlock()
	return r
}

func (f *CloudWatch) answer(c *Call) *Response {
	if c.Action != "GetMetricData" {
		return cborError(http.StatusBadRequest, "InvalidAction", "the CloudWatch fake answers GetMetricData only, not "+c.Action)
	}
	v, err := cbor.Decode(c.Body)
	in, ok := v.(cbor.Map)
	if err != nil || !ok {
		return cborError(http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("not a CBOR map: %v", err))
	}
	from, to := cborTime(in["StartTime"]), cborTime(in["EndTime"])
	if from.IsZero() || to.IsZero() {
		return cborError(http.StatusBadRequest, "MissingParameter", "StartTime and EndTime are required")
	}
	queries, _ := in["MetricDataQueries"].(cbor.List)
	f.mu.Lock()
	defer f.mu.Unlock()
	var results cbor.List
	for _, q := range queries {
		qm, _ := q.(cbor.Map)
		stat, _ := qm["MetricStat"].(cbor.Map)
		metric, _ := stat["Metric"].(cbor.Map)
		if s, _ := stat["Stat"].(cbor.String); s != "Sum" {
			return cborError(http.StatusBadRequest, "InvalidParameterValue", "the CloudWatch fake sums only (Stat: Sum)")
		}
		dims := map[string]string{}
		list, _ := metric["Dimensions"].(cbor.List)
		for _, d := range list {
			dm, _ := d.(cbor.Map)
			n, _ := dm["Name"].(cbor.String)
			val, _ := dm["Value"].(cbor.String)
			dims[string(n)] = string(val)
		}
		ns, _ := metric["Namespace"].(cbor.String)
		name, _ := metric["MetricName"].(cbor.String)
		var values, stamps cbor.List
		for _, pt := range f.points {
			if pt.namespace != string(ns) || pt.metric != string(name) || !sameDims(pt.dims, dims) || pt.at.Before(from) || !pt.at.Before(to) {
				continue
			}
			values = append(values, cbor.Float64(pt.sum))
			stamps = append(stamps, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(pt.at.Truncate(time.Minute).Unix()))})
		}
		results = append(results, cbor.Map{"Id": qm["Id"], "Label": name, "Values": values, "Timestamps": stamps, "StatusCode": cbor.String("Complete")})
	}
	return cborAnswer(http.StatusOK, cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}})
}

func sameDims(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// cborTime reads a timestamp as RPC v2 CBOR sends it: tag 1, epoch
// seconds.
func cborTime(v cbor.Value) time.Time {
	tag, ok := v.(*cbor.Tag)
	if !ok || tag.ID != 1 {
		return time.Time{}
	}
	switch s := tag.Value.(type) {
	case cbor.Float64:
		return time.Unix(0, int64(float64(s)*1e9))
	case cbor.Float32:
		return time.Unix(0, int64(float64(s)*1e9))
	case cbor.Uint:
		return time.Unix(int64(s), 0)
	}
	return time.Time{}
}

func cborAnswer(status int, m cbor.Map) *Response {
	h := http.Header{}
	h.Set("Content-Type", "application/cbor")
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("X-Amzn-Requestid", "berth-test-proxy")
	return &Response{StatusCode: status, Header: h, Body: cbor.Encode(m)}
}

func cborError(status int, code, message string) *Response {
	return cborAnswer(status, cbor.Map{"__type": cbor.String(code), "message": cbor.String(message)})
}
