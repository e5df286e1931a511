// Package awsenv runs berth's verbs on an AWS environment: the same
// berth.yaml and the same verbs as on the local engine, carried out by
// direct AWS API calls from the CLI's own process (no berth server), with
// the state kept in AWS. docs/aws-design.md draws the resources and the
// deploy; this package's files follow it:
//
//	infra.go   the app's shared resources: network, security groups,
//	           cluster, log group, load balancer and listener
//	slots.go   a service's two slots (ECS service + target group each),
//	           started and waited on
//	rules.go   the listener rules that send traffic to a slot, switched
//	           by rewriting their weights
package awsenv

import "github.com/berth-dev/berth/internal/aws/clients"

// Env is one app in one AWS environment of its berth.yaml.
type Env struct {
	Name    string   // the environment's name in berth.yaml ("prod")
	App     string   // the app
	Region  string   // its region
	Cluster string   // an adopted ECS cluster, or "" for berth-APP
	Subnets []string // the environment's subnets, or none for the default VPC's

	c *clients.Clients
}

// what names the app and environment in messages: "shop (prod)".
func (e *Env) what() string { return e.App + " (" + e.Name + ")" }
