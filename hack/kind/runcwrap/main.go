// Command runcwrap is an OCI runtime that removes from a container's
// capability sets every capability this machine's bounding set lacks, and
// then runs runc with the same arguments.
//
// Why: `docker run --privileged` asks for every capability the kernel knows.
// On a machine whose capability bounding set lacks one (CAP_SYS_RESOURCE on
// the VMs this project's CI runs on), runc cannot grant it and the container
// fails with "unable to apply caps: operation not permitted". containerd's
// own privileged containers get the current set instead, and work; kind's
// node containers are Docker's, so hack/kind/dockerd.sh registers this
// wrapper as dockerd's default runtime:
//
//	dockerd --add-runtime fibguard-runcwrap=/path/to/runcwrap --default-runtime fibguard-runcwrap
//
// It edits the two places a capability list reaches runc: the bundle's
// config.json (`runc create --bundle DIR`, path process.capabilities) and
// the process file of `runc exec --process FILE` (path capabilities); without
// the second, containers start but `docker exec` fails the same way. Every
// other field is kept as it was (numbers included: seccomp arguments are
// 64-bit). On a machine whose bounding set is complete it changes nothing.
//
// The real runc is $FIBGUARD_RUNC when set, else /usr/sbin/runc, else runc
// on PATH. The wrapper writes nothing to standard output or error of its
// own, because its caller parses runc's.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "runcwrap:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	bounding, err := readBoundingSet("/proc/self/status")
	if err != nil {
		return err
	}
	for _, f := range specFiles(args) {
		if err := filterFile(f.path, f.capsPath, bounding); err != nil {
			return err
		}
	}
	runc, err := findRunc()
	if err != nil {
		return err
	}
	// exec, not a child: runc's PID, exit status, signals and file
	// descriptors (console sockets, preserved fds) must be the caller's.
	return syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
}

func findRunc() (string, error) {
	if p := os.Getenv("FIBGUARD_RUNC"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		return "/usr/sbin/runc", nil
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		return "", fmt.Errorf("no runc to run (set FIBGUARD_RUNC): %w", err)
	}
	return p, nil
}
