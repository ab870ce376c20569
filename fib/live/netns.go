package live

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// runDir is where `ip netns add` mounts named namespaces.
const runDir = "/var/run/netns"

// dumpAttempts bounds how often a netlink dump is repeated when the kernel
// flags it as interrupted (NLM_F_DUMP_INTR: the table changed while it was
// being read, so the answer may be inconsistent).
const dumpAttempts = 5

// target is an open network namespace: netlink sockets created inside it,
// and the path to enter it for the procfs files that follow the reading
// thread's namespace.
type target struct {
	// path is the namespace's file, "" for the namespace of the process.
	path string
	// h serves the requests vishvananda/netlink decodes fully (links,
	// addresses).
	h *netlink.Handle
	// sockets serves raw requests (routes, rules, route lookups), whose
	// attributes vishvananda/netlink drops in part.
	sockets map[int]*nl.SocketHandle
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

// open binds netlink sockets to the namespace. The sockets are created on
// a locked thread that enters the namespace and returns; no shared thread
// changes namespace.
func open(name string) (*target, error) {
	t := &target{path: nsPath(name)}
	nsh := netns.None()
	if t.path != "" {
		h, err := netns.GetFromPath(t.path)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", t.path, err)
		}
		// The netlink socket keeps the namespace alive; closing our file
		// descriptor of it cannot fail in a way that matters here.
		defer func() { _ = h.Close() }()
		nsh = h
	}
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in %s: %w", t, err)
	}
	s, err := nl.GetNetlinkSocketAt(nsh, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink socket in %s: %w", t, err)
	}
	t.h = h
	t.sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	return t, nil
}

func (t *target) close() {
	t.h.Close()
	for _, s := range t.sockets {
		s.Close()
	}
}

// String names the namespace for error messages.
func (t *target) String() string {
	if t.path == "" {
		return "current network namespace"
	}
	return "network namespace " + t.path
}

// do runs f on a locked OS thread that is inside the namespace, for files
// such as /proc/sys/net/* and /proc/thread-self/net/* whose content depends
// on the namespace of the thread that opens them.
func (t *target) do(f func() error) error {
	if t.path == "" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return f()
	}
	return ns.WithNetNSPath(t.path, func(ns.NetNS) error { return f() })
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
	err := unix.SetsockoptInt(t.sockets[unix.NETLINK_ROUTE].Socket.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, v)
	return err == nil
}

// request executes a netlink request over the raw socket and returns the
// reply messages of type resType.
func (t *target) request(req *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	req.Sockets = t.sockets
	return req.Execute(unix.NETLINK_ROUTE, resType)
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
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
		if attempt == dumpAttempts {
			var zero T
			return zero, fmt.Errorf("dump interrupted %d times: %w", attempt, err)
		}
	}
}
