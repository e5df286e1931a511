package supervisor

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Environment variables naming the inherited files, as "name:fd,name:fd".
// ChildEnv is set for the child; UpgradeEnv for the supervisor itself
// after it re-executes.
const (
	ChildEnv   = "BERTH_SUPERVISED_FDS"
	UpgradeEnv = "BERTH_SUPERVISOR_FDS"
)

// readyName is the inherited pipe a child writes to once it serves.
const readyName = "ready"

// ErrBadInheritance means an inherited file named in the environment is
// missing or malformed: the process was not started by a supervisor.
var ErrBadInheritance = errors.New("inherited file descriptors are malformed")

// NamedFile is a file handed to another process under a name.
type NamedFile struct {
	Name string
	File *os.File
}

// Inherited returns the files named by the environment variable env
// (ChildEnv or UpgradeEnv), or nil when it is not set. It takes the
// variable out of the environment, so this process's own children do not
// see it.
func Inherited(env string) (map[string]*os.File, error) {
	v, ok := os.LookupEnv(env)
	if !ok {
		return nil, nil
	}
	_ = os.Unsetenv(env)
	files := map[string]*os.File{}
	for _, part := range strings.Split(v, ",") {
		name, num, ok := strings.Cut(part, ":")
		fd, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil || fd < 3 {
			return nil, fmt.Errorf("%w: %s=%q", ErrBadInheritance, env, v)
		}
		if _, err := fcntl(fd, syscall.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("%w: %s names fd %d, which is not open", ErrBadInheritance, env, fd)
		}
		// Not inherited any further unless handed on explicitly.
		_, _ = fcntl(fd, syscall.F_SETFD, syscall.FD_CLOEXEC)
		files[name] = os.NewFile(uintptr(fd), name)
	}
	return files, nil
}

// encode is the value of ChildEnv/UpgradeEnv for files at fds.
func encode(names []string, fds []int) string {
	parts := make([]string, len(names))
	for i := range names {
		parts[i] = names[i] + ":" + strconv.Itoa(fds[i])
	}
	sort.Strings(parts) // stable, for logs
	return strings.Join(parts, ",")
}

// withoutEnv is env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
