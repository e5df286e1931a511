// Package fargate knows what AWS ECS Fargate accepts and turns a berth
// service into what Fargate runs: the task sizes it sells and the nearest
// ones to a size it does not (Size), everything in a spec it cannot do,
// refused before any AWS call with the key and the line (Check), and the
// task definition a service's revision becomes (TaskDefinition), with the
// target group's health check and attributes that carry what the spec asks
// of the load balancer.
//
// It is pure: no AWS call, no I/O, no clock. It only builds aws-sdk-go-v2
// request types; sending them is internal/aws/deploy's job. Its tests check
// what it emits against botocore's published ECS model, so a field or enum
// value ECS does not define fails here rather than in AWS.
package fargate
