package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// sandbox is a pod sandbox whose namespace the test removes itself after
// DEL, as a runtime does, so that what is left afterwards can be checked.
// (nstest's namespaces live until the test ends.)
type sandbox struct {
	name string
	rt   *libcni.RuntimeConf
}

// path is the sandbox's namespace file.
func (s *sandbox) path() string { return filepath.Join("/var/run/netns", s.name) }

// newSandbox creates a pod namespace with lo up and the runtime's
// arguments for it. Should the test fail before removing it, a cleanup
// removes it.
func (w *world) newSandbox() (*sandbox, error) {
	n := seq.Add(1)
	s := &sandbox{name: fmt.Sprintf("fgsb-%d-%d", os.Getpid(), n)}
	id := fmt.Sprintf("fgcycle-%d-%d", os.Getpid(), n)
	s.rt = &libcni.RuntimeConf{
		ContainerID: id,
		NetNS:       s.path(),
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", id},
			{"K8S_POD_INFRA_CONTAINER_ID", id},
		},
	}
	if out, err := exec.Command("ip", "netns", "add", s.name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	w.t.Cleanup(func() {
		if _, err := os.Stat(s.path()); err == nil {
			_ = s.remove() // a leftover after a failure; the failure is reported already
		}
	})
	if out, err := exec.Command("ip", "-n", s.name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip -n %s link set lo up: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	return s, nil
}

// remove deletes the sandbox's namespace.
func (s *sandbox) remove() error {
	if out, err := exec.Command("ip", "netns", "delete", s.name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addSandbox runs the chain's ADD for a sandbox and returns the result.
func (w *world) addSandbox(list *libcni.NetworkConfigList, s *sandbox) (*current.Result, error) {
	var res *current.Result
	err := w.inHost(func(ctx context.Context) error {
		r, err := w.cni.AddNetworkList(ctx, list, s.rt)
		if err != nil {
			return err
		}
		res, err = current.NewResultFromResult(r)
		return err
	})
	return res, err
}

// delSandbox runs the chain's DEL for a sandbox.
func (w *world) delSandbox(list *libcni.NetworkConfigList, s *sandbox) error {
	return w.inHost(func(ctx context.Context) error { return w.cni.DelNetworkList(ctx, list, s.rt) })
}

// cycleOutcome is what one sandbox's cycle did.
type cycleOutcome struct {
	// name is the sandbox's namespace, "" if it could not be created.
	name string
	// ip is the pod IP ADD returned; it was held from added until
	// deleting.
	ip               netip.Addr
	added, deleting  time.Time
	addErr, otherErr error
}

// cycle is one sandbox's life as a runtime drives it: create the
// namespace, ADD, DEL, remove the namespace.
func (w *world) cycle(list *libcni.NetworkConfigList) cycleOutcome {
	var o cycleOutcome
	s, err := w.newSandbox()
	if err != nil {
		o.otherErr = err
		return o
	}
	o.name = s.name
	res, err := w.addSandbox(list, s)
	o.added = time.Now()
	switch {
	case err != nil:
		o.addErr = err
	case len(res.IPs) != 1:
		o.addErr = fmt.Errorf("ADD returned %d IPs, want 1: %s", len(res.IPs), res)
	default:
		o.ip = prefixOf(res.IPs[0]).Addr()
	}
	// A runtime tears a sandbox down also after a failed ADD.
	o.deleting = time.Now()
	if err := w.delSandbox(list, s); err != nil {
		o.otherErr = fmt.Errorf("DEL: %w", err)
		return o
	}
	o.otherErr = s.remove()
	return o
}

// TestParallelCycles runs 50 pod sandboxes through ADD and DEL at once, as
// a node starting and stopping many pods does: bridge + host-local +
// fibguard, each sandbox in its own namespace, all on the same host
// namespace and bridge. Every ADD must be accepted with an address of its
// own and every DEL succeed; afterwards no veth, IPAM reservation or pod
// namespace may be left. Run it with the race detector, which then also
// watches the fibguard binary the test builds:
//
//	go test -race -run TestParallelCycles ./test/integration/
func TestParallelCycles(t *testing.T) {
	const cycles = 50
	needFibguard(t)
	w := newWorld(t)
	list := w.load(bridgeNet("10.88.0.0/24").withFibguard(nil))
	vethsBefore := vethNames(t, w.host)

	outcomes := make([]cycleOutcome, cycles)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range outcomes {
		wg.Go(func() {
			<-start
			outcomes[i] = w.cycle(list)
		})
	}
	close(start)
	wg.Wait()

	for i, o := range outcomes {
		if o.addErr != nil {
			t.Errorf("cycle %d: ADD: %v", i, o.addErr)
		}
		if o.otherErr != nil {
			t.Errorf("cycle %d: %v", i, o.otherErr)
		}
		for j := range i {
			p := outcomes[j]
			// Both pods held the address at once: a double allocation.
			if o.ip.IsValid() && o.ip == p.ip && o.added.Before(p.deleting) && p.added.Before(o.deleting) {
				t.Errorf("cycles %d and %d held %s at the same time", j, i, o.ip)
			}
		}
	}
	if log, err := os.ReadFile(w.logFile); err != nil {
		t.Errorf("reading fibguard's log: %v", err)
	} else if n := strings.Count(string(log), `"msg":"pod network accepted"`); n != cycles {
		t.Errorf("fibguard's log records %d accepted pods, want %d: did fibguard run in every chain?", n, cycles)
	}
	if after := vethNames(t, w.host); len(after) != len(vethsBefore) {
		t.Errorf("veths in the host namespace after every DEL: %v (before: %v)", after, vethsBefore)
	}
	if left, err := w.reservations(); err != nil {
		t.Error(err)
	} else if len(left) > 0 {
		t.Errorf("host-local still reserves %v after every DEL", left)
	}
	for i, o := range outcomes {
		if o.name == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join("/var/run/netns", o.name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cycle %d: pod namespace %s is left (stat: %v)", i, o.name, err)
		}
	}
}
