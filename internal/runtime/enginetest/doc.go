// Package enginetest is the conformance suite every runtime.PodEngine
// passes: the in-memory fake (runtime/fake) and the real engines alike, as
// Nomad's plugins/drivers/testutils checks every task driver. An engine's
// own _test.go calls Run with a Harness saying how to make the engine and
// how to run the test app (internal/testutil/testapp) on it.
//
// The suite checks the rules written in runtime/pod.go through the
// contract only, using only what testapp does (serve, exit N, lines N,
// sleep D, echo, env), so the same checks run on a real engine with the
// real image and on the fake that simulates it. Each check is a subtest
// that makes its own engine (Harness.New), names everything uniquely,
// cleans up after itself and runs in parallel with the others.
//
// An engine's harness, for example:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Harness{
//			New: func(t *testing.T) runtime.PodEngine {
//				e := newEngine(t) // closed by t.Cleanup
//				e.SetOwner(runtime.Owner{ID: testutil.UniqueName(t, "owner"), Dir: t.TempDir()})
//				return e
//			},
//			Peer: func(t *testing.T, e runtime.PodEngine) runtime.PodEngine {
//				p := newEngine(t)
//				p.SetOwner(runtime.Owner{ID: testutil.UniqueName(t, "peer"), Dir: t.TempDir()})
//				return p
//			},
//			App:     testutil.TestAppImage(t),
//			AppArgv: []string{"/testapp"},
//		})
//	}
//
// Every pod the suite makes carries a berth.app label of its own check
// (bt-ct-...), so checks never see each other's pods, nor another test's.
//
// It must not import an engine, and must not assert anything the contract
// does not say: where an engine may choose (an exit code after SIGTERM,
// how fast a pod exits), the suite accepts any choice.
package enginetest
