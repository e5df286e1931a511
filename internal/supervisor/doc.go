// Package supervisor keeps a daemon's listening sockets open across the
// daemon's restarts and upgrades: a small parent process binds them once,
// runs the daemon as a child process that inherits them, restarts that
// child at once when it dies, and on SIGHUP drains it and re-executes
// itself (a possibly new binary) with the sockets, as nginx's binary
// upgrade and HAProxy's seamless reload do. While no child accepts, new
// connections wait in the kernel's accept queue instead of being refused.
//
// It owns the process tree, the inheritance of file descriptors (by name,
// through the environment) and the child's readiness pipe. It knows
// nothing of berth's daemon: what the files are and what the child does
// with them is its caller's business.
package supervisor
