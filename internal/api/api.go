// Package api holds the wire types of berth's HTTP API, shared by the daemon
// (controlplane) and its Go client. It has no behaviour and imports nothing of
// berth's but the spec model.
//
// Endpoints (all JSON; streams are newline-delimited JSON of Message):
//
//	GET    /v1/apps                                   -> []AppSummary
//	POST   /v1/deploy                   DeployRequest -> stream of Message (phases, logs, final Result)
//	GET    /v1/status?app=A                           -> Status
//	GET    /v1/apps/{app}/services/{svc}/revisions    -> []Revision
//	POST   /v1/apps/{app}/services/{svc}/rollback  RollbackRequest -> stream of Message
//	GET    /v1/apps/{app}/services/{svc}/logs?follow=1&since=10m&instance=ID&tail=N -> stream of Message (kind "log")
//	POST   /v1/apps/{app}/scale          ScaleRequest -> Status
//	POST   /v1/apps/{app}/services/{svc}/pause        -> ServiceStatus
//	POST   /v1/apps/{app}/services/{svc}/resume       -> stream of Message
//	DELETE /v1/apps/{app}                             -> stream of Message
//	GET    /v1/apps/{app}/services/{svc}/secrets      -> []SecretKey
//	PUT    /v1/apps/{app}/services/{svc}/secrets  SecretSetRequest -> []SecretKey
//	DELETE /v1/apps/{app}/services/{svc}/secrets/{key}
//	GET    /v1/events?app=A&follow=1                 -> stream of Message (kind "event")
//
// Errors are HTTP 4xx/5xx with an Error body.
package api

import (
	"time"
)

// Error is the body of every failed request. Message is one line that says
// what was wrong and what to do.
type Error struct {
	Message string `json:"error"`
	// Code is a stable machine-readable reason, e.g. "not_found",
	// "conflict", "invalid", "deploy_in_progress".
	Code string `json:"code,omitempty"`
}

// AppSummary is one app in GET /v1/apps.
type AppSummary struct {
	Name     string   `json:"name"`
	Services []string `json:"services"`
}

// DeployRequest deploys a spec. The daemon parses and validates the YAML
// itself so errors name the file and line exactly as the user wrote them.
type DeployRequest struct {
	// File is the spec's path as the user named it (for messages); BaseDir is
	// the absolute directory build contexts are relative to.
	File    string `json:"file"`
	BaseDir string `json:"base_dir"`
	YAML    string `json:"yaml"`
	// Services limits the deploy to these services (empty: all).
	Services []string `json:"services,omitempty"`
	// Images overrides a service's image: SERVICE -> REF.
	Images map[string]string `json:"images,omitempty"`
}

// RollbackRequest returns a service to an earlier revision; To 0 means the
// previous one.
type RollbackRequest struct {
	To int `json:"to,omitempty"`
}

// ScaleRequest sets fixed instance counts: SERVICE -> N.
type ScaleRequest struct {
	Counts map[string]int `json:"counts"`
}

// SecretSetRequest sets secrets: KEY -> VALUE.
type SecretSetRequest struct {
	Values map[string]string `json:"values"`
}

// SecretKey is a secret's name and when it was set; values are never returned.
type SecretKey struct {
	Key       string    `json:"key"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Message kinds in a stream.
const (
	KindPhase  = "phase"  // a deploy phase began or ended: Phase, Text
	KindLog    = "log"    // a line of output: Source (instance/task ID), Stream, Text
	KindEvent  = "event"  // a recorded event: Event
	KindResult = "result" // the last message of a stream: OK, Error, Result fields
)

// Message is one line of a streamed response.
type Message struct {
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	Phase  string    `json:"phase,omitempty"`
	Text   string    `json:"text,omitempty"`
	Source string    `json:"source,omitempty"`
	Stream string    `json:"stream,omitempty"`
	Event  *Event    `json:"event,omitempty"`
	// Result fields, when Kind is "result".
	OK       bool     `json:"ok,omitempty"`
	Error    string   `json:"error,omitempty"`
	Code     string   `json:"code,omitempty"`
	Deployed []Deploy `json:"deployed,omitempty"`
	// LastLogs are the failing instance's last output lines, on failure.
	LastLogs []string `json:"last_logs,omitempty"`
}

// Deploy summarises one service's outcome in a deploy or rollback.
type Deploy struct {
	Service  string   `json:"service"`
	Revision int      `json:"revision"`
	URLs     []string `json:"urls,omitempty"`
}

// Event is something that happened, as recorded in the store.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	App     string    `json:"app"`
	Service string    `json:"service,omitempty"`
	Kind    string    `json:"kind"` // deploy, rollback, crash, scale, pause, resume, exec, task...
	Message string    `json:"message"`
}

// Status is GET /v1/status: every app (or one) with its services.
type Status struct {
	Apps []AppStatus `json:"apps"`
}

// AppStatus is one app in Status.
type AppStatus struct {
	Name     string          `json:"name"`
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus is one service in Status.
type ServiceStatus struct {
	App       string           `json:"app"`
	Name      string           `json:"name"`
	State     string           `json:"state"` // running, deploying, paused, crash-loop, failed, stopped
	Revision  int              `json:"revision"`
	Image     string           `json:"image"`
	Desired   int              `json:"desired"`
	Running   int              `json:"running"`
	URLs      []string         `json:"urls,omitempty"`
	Instances []InstanceStatus `json:"instances"`
	// Message explains a non-running state (e.g. crash loop backoff).
	Message string `json:"message,omitempty"`
}

// InstanceStatus is one instance in ServiceStatus.
type InstanceStatus struct {
	ID          string    `json:"id"`
	Revision    int       `json:"revision"`
	State       string    `json:"state"` // starting, healthy, unhealthy, draining, stopped, crashed
	ContainerID string    `json:"container_id"`
	Addr        string    `json:"addr,omitempty"`
	Restarts    int       `json:"restarts"`
	StartedAt   time.Time `json:"started_at"`
	CPU         float64   `json:"cpu,omitempty"`
	Memory      int64     `json:"memory,omitempty"`
}

// Revision is one immutable revision of a service.
type Revision struct {
	Number    int       `json:"number"`
	Image     string    `json:"image"`
	ImageID   string    `json:"image_id"`
	Status    string    `json:"status"` // active, previous, retired, failed
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message,omitempty"`
}
