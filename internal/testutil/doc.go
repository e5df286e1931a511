// Package testutil holds helpers shared by berth's tests: locally built
// images (the testapp, a static busybox, any build context), a check that
// the Docker Engine is reachable, unique names, free ports and HTTP waits.
//
// It talks to the Docker Engine through the Engine's own Go client, not
// through internal/runtime/docker, so that package's own tests can use it
// without an import cycle. Nothing here pulls an image: every image is built
// FROM scratch from files on this machine.
//
// Only test code may import this package.
package testutil
