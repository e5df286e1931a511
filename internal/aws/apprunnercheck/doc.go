// Package apprunnercheck knows what AWS App Runner cannot do, with the AWS
// page that says so (Limits), and finds everything in a berth.yaml, or
// observed of a running service, that a service on App Runner needs and App
// Runner cannot give it (Check): the team's "keep the app on App Runner
// until a technical constraint forces ECS Fargate", made a check that CI can
// run ("berth check --env prod").
//
// Each Finding is either a constraint, which forces the service off App
// Runner, or a note, which does not. The rule between them: a constraint is
// something App Runner cannot do as the spec (or an observation) asks and
// Fargate behind an ALB can; a note is something App Runner adapts (a size
// rounded up to the next it sells, a health check interval clamped), runs
// elsewhere (tasks on the ECS cluster), or something Fargate lacks as well
// (scale to zero, a per-instance queue), so moving would not help.
//
// It is pure: no AWS call, no I/O, no clock. What AWS measures (CloudWatch
// metrics and logs that show WebSocket upgrades, requests cut at 120 s, an
// exec wanted) reaches it as Observed needs a caller passes in.
package apprunnercheck
