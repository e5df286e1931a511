package api

import "time"

// SignIn is the answer of POST /v1/ui/signin: a one-time URL that signs a
// browser in to the console (berth ui).
type SignIn struct {
	// URL is used once, before Expires; it sets the console's session
	// cookie and leads to the console's first page.
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// TrafficHistory is GET /v1/apps/{app}/services/{svc}/history: the
// service's requests at the edge over the last hour, per revision, one
// point every Every, oldest first. It is kept in the daemon's memory and
// starts empty at each daemon start.
type TrafficHistory struct {
	App     string         `json:"app"`
	Service string         `json:"service"`
	Every   string         `json:"every"`
	Points  []TrafficPoint `json:"points"`
}

// TrafficPoint is every revision's traffic over one sample interval.
type TrafficPoint struct {
	Time      time.Time        `json:"time"`
	Revisions []RevisionSample `json:"revisions,omitempty"`
}

// RevisionSample is a revision's requests over one sample interval.
type RevisionSample struct {
	Revision          int     `json:"revision"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	LatencyP50MS      float64 `json:"latency_p50_ms"`
	LatencyP99MS      float64 `json:"latency_p99_ms"`
	// ErrorsPerSecond are the responses with a 5xx status (the service's
	// own, or the edge's when the instance failed to answer).
	ErrorsPerSecond float64 `json:"errors_per_second"`
}
