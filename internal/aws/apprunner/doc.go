// Package apprunner runs a berth service on an existing AWS App Runner
// service: the service named by the spec's `apprunner: ARN`. It reads such a
// service into a berth.yaml service block (Import, AddToSpec), tags it as
// berth's (Adopt), deploys an image already pushed and pinned by digest
// (Deploy, Rollback: one UpdateService, then the operation waited on and
// its phases printed), pauses and resumes it, and reports its state
// (Status) and what it runs (Runtime, for tasks on ECS that run like it).
//
// What maps to what (Import reads the right column, Deploy writes it):
//
//	image            SourceConfiguration.ImageRepository.ImageIdentifier (ECR, or
//	                 ECR_PUBLIC for public.ecr.aws/); the access role is kept
//	port             ImageConfiguration.Port (App Runner's default 8080)
//	command          ImageConfiguration.StartCommand, one string (quoted words)
//	env              ImageConfiguration.RuntimeEnvironmentVariables
//	secrets          ImageConfiguration.RuntimeEnvironmentSecrets: names in the
//	                 spec, ARNs kept from the service (or Runner.SecretARN)
//	cpu, memory      InstanceConfiguration Cpu/Memory ("1 vCPU", "2 GB" = GiB);
//	                 only the pairs App Runner sells; unset: kept
//	health           HealthCheckConfiguration: HTTP with a path, else TCP;
//	                 whole seconds and counts of 1-20
//	scale            the auto scaling configuration (MinSize, MaxSize,
//	                 MaxConcurrency); a new one is a revision of berth-SERVICE;
//	                 unset: kept
//	(not in the spec) observability, instance role, network: kept, noted by
//	                 Import; automatic deployments: turned off (berth pins digests)
//
// It makes App Runner calls only, through the client in internal/aws/clients.
// It does not push images (internal/aws/images does, for the caller), keep
// revisions, events or locks (internal/aws/awsstate, for the caller), nor
// decide whether a spec still fits App Runner (berth check). It never
// knows what answers its calls: tests point the standard configuration
// chain at the App Runner fake in internal/aws/awstest.
package apprunner
