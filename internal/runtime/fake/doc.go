// Package fake is an in-memory runtime.PodEngine for tests, as Nomad's
// drivers/mock is a task driver: the control plane's tests run on it
// without a Docker Engine, and it passes the same conformance suite
// (runtime/enginetest) as the real engines.
//
// It runs no containers. It simulates the one image berth's tests use,
// internal/testutil/testapp (TestApp is registered by New): a container's
// argv is interpreted as testapp interprets its own (serve, migrate, exit
// N, lines N, sleep D, echo, env, cat), with the same output lines, exit
// codes and reaction to SIGTERM (EXIT_ON_SIGTERM). "serve" answers on a
// real 127.0.0.1 listener like testapp's HTTP server (/, /healthz,
// /env/NAME, /sleep, /sse, /ws, /fetch, /headers, /hostname), and a pod's
// Addr is a real 127.0.0.1 port forwarded to whichever of its containers
// serves Port, so the edge and HTTP clients reach it as they would a
// container. A pod's containers reach each other on localhost and the
// pods of their network by their Aliases (through /fetch).
//
// Faults a control-plane test needs are injected by name: FailNext (the
// next call of an operation fails), Kill, KillContainer, OOMKill, Vanish
// (removed behind berth's back), Break (Pod.Broken), SetMemTotal,
// RemoveNetworkBehindBack and BreakEvents.
//
// Every Engine made by New shares nothing with another; Peer returns a
// second view of the same world acting for another owner. Close ends every
// process, listener and subscription of the world.
//
// It must not touch the host beyond 127.0.0.1 listeners: /fetch reaches
// only the world's pods, never the network.
package fake
