// Package apprunner runs a berth service on an existing AWS App Runner
// service: the service named by the spec's `apprunner: ARN`. It reads such a
// service into a berth.yaml service block (Import, AddToSpec), deploys an
// image already pushed and pinned by digest (Deploy, Rollback: an
// UpdateService, then the operation waited on and its phases printed),
// pauses and resumes it, and reports its state (Status).
//
// It makes App Runner calls only, through the client in internal/aws/clients.
// It does not push images (internal/aws/images does, for the caller), keep
// revisions or locks (internal/aws/awsstate, for the caller), nor decide
// whether a spec still fits App Runner (berth check). It never knows what
// answers its calls: tests point the standard configuration chain at the
// App Runner fake in internal/aws/awstest.
package apprunner
