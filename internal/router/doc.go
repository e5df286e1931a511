// Package router is the contract between berth's control plane and its data
// plane: what the control plane tells a router (which backends serve which
// routes, which entrypoints sit in front of them), and what it asks back
// (drain these backends, how loaded is this route). The control plane
// holds a Router and never the implementation; the autoscaler and `berth
// status` read load only through it.
//
// The package holds the contract and its value types, nothing else: no
// proxying, no networking, no state. internal/edge implements it on the
// local machine (an HTTP reverse proxy in the daemon), with
// `var _ router.Router = (*edge.Edge)(nil)` there.
//
// An AWS router would meet the same contract this way:
//
//   - a Route is an ALB listener rule on its Hosts (and PathRoutes as
//     path-pattern rules) forwarding to a target group; Backends are the
//     group's registered targets (ECS tasks by IP), Update registers and
//     deregisters them;
//   - a weighted Share (a canary, a shift) is a forward action to several
//     target groups with weights (basis points scale to ALB's 0-999);
//   - an Entrypoint is a CloudFront distribution: Hosts are its aliases,
//     Origin and Shares its origins (an ALB or a URL such as an App Runner
//     service), Routes its cache behaviours by path pattern, Failover an
//     origin group;
//   - WaitIdle is the target group's deregistration delay; Load and Stats
//     come from the ALB's CloudWatch metrics (ActiveConnectionCount,
//     RequestCountPerTarget, TargetResponseTime), coarser than the local
//     edge's counters;
//   - Hold (scale to zero) has no ALB equivalent: an AWS router keeps at
//     least one task and ignores it.
//
// Optional powers that only some routers have are separate small
// interfaces (OriginProber), found with a type assertion.
package router
