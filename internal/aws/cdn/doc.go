// Package cdn carries an app's edge: entrypoints to an AWS environment as
// CloudFront distributions: one distribution per entrypoint, created
// (tagged berth.app, berth.env, berth.entrypoint) or adopted by its ID
// (distribution: in berth.yaml), whose origins are the entrypoint's
// origins, a berth service being the app's load balancer reached with a
// secret header, and whose default cache behavior targets the active one.
//
//	cdn.go        the Manager: finding an entrypoint's distribution
//	origins.go    origins: the ALB (with the origin secret), URLs
//	secret.go     the origin secret in Secrets Manager, its rotation, the
//	              listener rule conditions the ALB must add
//	cache.go      cache: and compress: as a cache policy
//	apply.go      creating or adopting a distribution
//	update.go     UpdateDistribution with If-Match, retried; the wait for Deployed
//	switch.go     switch, invalidate, list and show
//	shift.go      a share: ALB weights or a continuous-deployment staging distribution
//	cert.go       the ACM certificate (us-east-1) the aliases need
//
// It calls CloudFront, ACM and Secrets Manager only. It must not touch the
// app's load balancer or DNS: what the load balancer must do (accept only
// requests carrying the origin secret, weight target groups for a shift
// between two services) is returned for internal/aws/awsenv to apply, and
// no Route 53 record is ever read or written, since the point of an
// entrypoint is that its DNS never changes.
package cdn
