// Package cli is berth's command line: one cobra command per verb (one file
// each), the daemon's `berth server` entry point, app resolution and the
// human and --json output. It talks to the daemon only through package
// client and must not reach into the daemon's packages, except
// controlplane.Run for `berth server`.
package cli
