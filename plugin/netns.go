package plugin

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"

	"github.com/fibguard/fibguard/fib/live"
)

// selfNetns is the plugin process's own network namespace.
const selfNetns = "/proc/self/ns/net"

// checkNetns verifies CNI_NETNS before anything reads it: it must be a
// network namespace (ErrInvalidEnvironmentVariables otherwise, naming the
// variable as the spec asks), and not the host namespace the plugin runs
// in (ErrInvalidNetNS, as skel reports it — but skel checks only after
// ADD has printed its result, which would leave two JSON documents on
// stdout).
func checkNetns(path, hostNetns string) error {
	pod, err := nsID(path)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("fibguard: CNI_NETNS %q: %v", path, err), "")
	}
	host, err := hostNsID(hostNetns)
	if err != nil {
		return err
	}
	if pod == host {
		return types.NewError(types.ErrInvalidNetNS,
			fmt.Sprintf("fibguard: CNI_NETNS %q is the plugin's own network namespace, not the pod's", path), "")
	}
	return nil
}

// hostNsID identifies the host namespace: the plugin's own, named by
// procfs, is one stat, a path given in its place (by tests) is checked as
// CNI_NETNS is.
func hostNsID(path string) (nsKey, error) {
	if path != "" {
		id, err := nsID(path)
		if err != nil {
			return nsKey{}, fmt.Errorf("host network namespace %s: %w", path, err)
		}
		return id, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(selfNetns, &st); err != nil {
		return nsKey{}, fmt.Errorf("host network namespace: %w", err)
	}
	return nsKey{dev: st.Dev, ino: st.Ino}, nil
}

// nsKey identifies a namespace: the device and inode of its nsfs file.
type nsKey struct {
	dev, ino uint64
}

// nsID opens a path that must be a network namespace (live.OpenNetns:
// anything else, a FIFO included, is an error, never a wait) and returns
// its identity.
func nsID(path string) (nsKey, error) {
	// A raw descriptor, not an *os.File: that costs four fcntl and an
	// epoll registration, on every ADD.
	fd, err := live.OpenNetns(path)
	if err != nil {
		return nsKey{}, err
	}
	defer func() { _ = unix.Close(fd) }() // read-only; nothing to lose on close
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsKey{}, fmt.Errorf("stat: %w", err)
	}
	return nsKey{dev: st.Dev, ino: st.Ino}, nil
}
