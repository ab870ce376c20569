package live

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// runDir is where `ip netns add` mounts named namespaces.
const runDir = "/var/run/netns"

// dumpAttempts bounds how often a netlink dump is repeated when the kernel
// flags it as interrupted (NLM_F_DUMP_INTR: the table changed while it was
// being read, so the answer may be inconsistent).
const dumpAttempts = 5

// target is an open network namespace: a netlink socket created inside
// it, and the path to enter it for the procfs files that follow the
// reading thread's namespace.
type target struct {
	// path is the namespace's file, "" for the namespace of the process.
	path string
	// c serves every request: dumps, lookups, links by name or index.
	c *conn
	// names are the device names of the last link dump, for the devices
	// of route lookups' answers.
	names map[int]string
	// inside is set while the calling goroutine's thread is in the
	// namespace (during open's inside function), so that do runs at once.
	inside bool
}

// nsPath resolves Load's and RouteGet's netns argument: "" is the current
// namespace, anything with a slash a path, anything else a name under
// /var/run/netns.
func nsPath(name string) string {
	if name == "" || strings.Contains(name, "/") {
		return name
	}
	return filepath.Join(runDir, name)
}

// open binds a netlink socket to the namespace and, if inside is not nil,
// runs it with the thread still in the namespace, so that a caller that
// also reads procfs enters the namespace once. The socket is created on a
// locked thread that enters the namespace and returns; no shared thread
// changes namespace.
func open(name string, inside func(*target) error) (*target, error) {
	t := &target{path: nsPath(name)}
	err := t.do(func() error {
		c, err := newConn()
		if err != nil {
			return err
		}
		t.c = c
		if inside == nil {
			return nil
		}
		t.inside = true
		defer func() { t.inside = false }()
		return inside(t)
	})
	if err != nil {
		if t.c != nil {
			t.c.close()
		}
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return t, nil
}

func (t *target) close() {
	t.c.close()
}

// String names the namespace for error messages.
func (t *target) String() string {
	if t.path == "" {
		return "current network namespace"
	}
	return "network namespace " + t.path
}

// do runs f on a locked OS thread that is inside the namespace, for
// netlink sockets and for files such as /proc/sys/net/* and
// /proc/thread-self/net/* whose content depends on the namespace of the
// thread that opens them. The calling goroutine's own thread enters the
// namespace and leaves it before it is unlocked: handing the work to
// another goroutine costs a thread switch, which a loaded machine makes
// slow. Should the thread fail to go back (setns into its own namespace,
// which it left moments before), the error says so and the goroutine
// stays locked to the thread, so that no other goroutine ever runs in the
// wrong namespace.
func (t *target) do(f func() error) error {
	if t.inside {
		return f()
	}
	runtime.LockOSThread()
	if t.path == "" {
		defer runtime.UnlockOSThread()
		return f()
	}
	self, err := t.enter()
	if err != nil {
		runtime.UnlockOSThread() // still in its own namespace
		return err
	}
	err = f()
	if err2 := t.leave(self); err2 != nil {
		return errors.Join(err, err2)
	}
	runtime.UnlockOSThread()
	return err
}

// enter moves the locked calling thread into the namespace and returns
// its own namespace, open, for leave. On an error the thread has not
// moved.
func (t *target) enter() (self int, err error) {
	self, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open own network namespace: %w", err)
	}
	fd, err := OpenNetns(t.path)
	if err != nil {
		_ = unix.Close(self) // read-only: nothing to lose
		return -1, fmt.Errorf("open network namespace %s: %w", t.path, err)
	}
	defer func() { _ = unix.Close(fd) }() // read-only: nothing to lose
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		_ = unix.Close(self) // read-only: nothing to lose
		return -1, fmt.Errorf("enter network namespace %s: %w", t.path, err)
	}
	return self, nil
}

// leave moves the thread back into its own namespace, self, and closes
// it.
func (t *target) leave(self int) error {
	defer func() { _ = unix.Close(self) }() // read-only: nothing to lose
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave network namespace %s: %w", t.path, err)
	}
	return nil
}

// setStrict switches strict checking of requests (NETLINK_GET_STRICT_CHK)
// on or off for the raw socket; with it on, the kernel honours the
// filters of a dump request, such as RTA_TABLE. It reports whether the
// kernel took the option: kernels before 4.20 do not know it.
func (t *target) setStrict(on bool) bool {
	v := 0
	if on {
		v = 1
	}
	err := unix.SetsockoptInt(t.c.fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, v)
	return err == nil
}

// request executes a netlink request and returns the reply messages of
// type resType.
func (t *target) request(req *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	return t.c.execute(req, resType)
}

// dump asks for every object of a kind (RTM_GETROUTE, RTM_GETRULE) of one
// family. Routes and rules both start with a 12-byte header whose first
// byte is the family, so one header serves both.
func (t *target) dump(msgType int, family int, resType uint16) ([][]byte, error) {
	return retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(msgType, unix.NLM_F_DUMP)
		req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(family)}})
		return t.request(req, resType)
	})
}

// retry calls f again while the kernel reports the dump as interrupted, up
// to dumpAttempts times, as containernetworking's netlinksafe does.
func retry[T any](f func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := f()
		if !errors.Is(err, errDumpInterrupted) {
			return v, err
		}
		if attempt == dumpAttempts {
			var zero T
			return zero, fmt.Errorf("dump interrupted %d times: %w", attempt, err)
		}
	}
}
