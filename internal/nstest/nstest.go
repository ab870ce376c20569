// Package nstest gives kernel tests a network namespace of their own, so
// they can build links, addresses, routes and rules with iproute2 and
// compare what the kernel does with what a model predicts, without ever
// touching the namespace the tests run in.
//
// Every namespace is named fgt-<pid>-<n> and deleted by a t.Cleanup, also
// when the test fails. Tests that cannot create namespaces (not root, no
// ip(8), no permission) are skipped with the reason.
package nstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// runDir is where `ip netns add` mounts named namespaces.
const runDir = "/var/run/netns"

// counter makes namespace names unique within the test binary.
var counter atomic.Uint64

// NS is a named network namespace that lives as long as the test that
// created it.
type NS struct {
	name string
}

// New creates an empty network namespace whose loopback device is down, as
// the kernel creates it, and deletes it when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	return create(t, false)
}

// NewWithLoUp is New with the loopback device brought up, which gives the
// namespace 127.0.0.1/8 and ::1 and their local routes.
func NewWithLoUp(t testing.TB) *NS {
	t.Helper()
	return create(t, true)
}

func create(t testing.TB, loUp bool) *NS {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("nstest: creating network namespaces needs root (running as euid %d)", euid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("nstest: iproute2's ip is not installed: %v", err)
	}
	n := &NS{name: fmt.Sprintf("fgt-%d-%d", os.Getpid(), counter.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "Operation not permitted") {
			t.Skipf("nstest: no permission to create network namespaces: %s", msg)
		}
		t.Fatalf("nstest: ip netns add %s: %v: %s", n.name, err, msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil {
			t.Errorf("nstest: ip netns delete %s: %v: %s", n.name, err, bytes.TrimSpace(out))
		}
	})
	if loUp {
		if _, err := n.IP("link", "set", "lo", "up"); err != nil {
			t.Fatalf("nstest: %v", err)
		}
	}
	return n
}

// Name returns the namespace's name, as `ip netns` lists it.
func (n *NS) Name() string { return n.name }

// Path returns the namespace's bind mount, /var/run/netns/NAME.
func (n *NS) Path() string { return filepath.Join(runDir, n.name) }

// failedLine finds the line iproute2 reports as failed in batch mode
// ("Command failed -:3").
var failedLine = regexp.MustCompile(`Command failed -:(\d+)`)

// Batch runs iproute2 commands in the namespace, one per element, as
// `ip -n NAME -batch -` does; the commands are written without the leading
// "ip" ("link add br0 type bridge"). Batch mode takes no per-command
// options: an IPv6 rule needs IP("-6", "rule", ...), while routes and
// addresses infer the family from the address. The batch stops at the
// first failing command; the error names that command and carries ip's
// message.
func (n *NS) Batch(cmds []string) error {
	cmd := exec.Command("ip", "-n", n.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if m := failedLine.FindStringSubmatch(msg); m != nil {
			if i, _ := strconv.Atoi(m[1]); i >= 1 && i <= len(cmds) {
				return fmt.Errorf("ip -n %s: command %d %q: %w: %s", n.name, i, cmds[i-1], err, msg)
			}
		}
		return fmt.Errorf("ip -n %s -batch: %w: %s", n.name, err, msg)
	}
	return nil
}

// IP runs `ip -n NAME ARGS...` and returns its standard output.
func (n *NS) IP(args ...string) ([]byte, error) {
	return run("ip", append([]string{"-n", n.name}, args...)...)
}

// Exec runs a program inside the namespace (`ip netns exec NAME ARGS...`)
// and returns its standard output; a failure carries its standard error.
func (n *NS) Exec(args ...string) ([]byte, error) {
	return run("ip", append([]string{"netns", "exec", n.name}, args...)...)
}

// Sysctl sets a sysctl of the namespace, such as
// "net.ipv4.conf.br0.route_localnet". The key may use dots or slashes
// between its parts (slashes when a device name holds a dot). It writes
// /proc/sys from a thread that has entered the namespace, so it needs no
// sysctl(8). Only net.* sysctls belong to a namespace; others are refused,
// as writing them would change the machine.
func (n *NS) Sysctl(key, value string) error {
	rel := key
	if !strings.Contains(rel, "/") {
		rel = strings.ReplaceAll(rel, ".", "/")
	}
	rel = filepath.Clean("/" + rel)
	if !strings.HasPrefix(rel, "/net/") {
		return fmt.Errorf("sysctl %s: not a network namespace sysctl", key)
	}
	file := filepath.Join("/proc/sys", rel)
	err := ns.WithNetNSPath(n.Path(), func(ns.NetNS) error {
		return os.WriteFile(file, []byte(value), 0)
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.name, err)
	}
	return nil
}

func run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := bytes.TrimSpace(stderr.Bytes()); len(msg) > 0 {
			return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}
