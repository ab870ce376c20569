package plugin

import (
	"fmt"
	"io/fs"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
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
	if hostNetns == "" {
		hostNetns = selfNetns
	}
	host, err := nsID(hostNetns)
	if err != nil {
		return fmt.Errorf("host network namespace %s: %w", hostNetns, err)
	}
	if pod == host {
		return types.NewError(types.ErrInvalidNetNS,
			fmt.Sprintf("fibguard: CNI_NETNS %q is the plugin's own network namespace, not the pod's", path), "")
	}
	return nil
}

// nsKey identifies a namespace: the device and inode of its nsfs file.
type nsKey struct {
	dev, ino uint64
}

// nsID opens a path that must be a network namespace and returns its
// identity.
func nsID(path string) (nsKey, error) {
	if path == "" {
		return nsKey{}, fmt.Errorf("empty path")
	}
	// unix.Open, not os.Open: an *os.File costs four fcntl and an epoll
	// registration, on every ADD.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nsKey{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }() // read-only; nothing to lose on close
	kind, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return nsKey{}, fmt.Errorf("not a namespace: %w", err)
	}
	if kind != unix.CLONE_NEWNET {
		return nsKey{}, fmt.Errorf("not a network namespace")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsKey{}, fmt.Errorf("stat: %w", err)
	}
	return nsKey{dev: st.Dev, ino: st.Ino}, nil
}
