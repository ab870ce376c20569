package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/fibguard/fibguard/internal/nstest"
)

// cniTimeout bounds one libcni call (a whole chain).
const cniTimeout = time.Minute

// seq makes bridge names and container IDs unique within the test binary.
var seq atomic.Uint64

// world is one node as a runtime sees it: a host namespace, a libcni
// configuration whose plugin path holds the reference plugins and
// fibguard, and per-test state directories (host-local's dataDir, libcni's
// cache, fibguard's log), so that no test reads or writes the machine's
// /var/lib/cni.
type world struct {
	t        testing.TB
	host     *nstest.NS
	cni      *libcni.CNIConfig
	bridge   string // the bridge device of bridge networks, unique per world
	dataDir  string // host-local's dataDir
	logFile  string // fibguard's log
	cacheDir string // libcni's cache: results/ holds one file per attachment
	// stderr receives the plugins' standard error; nil is the test's own.
	stderr *os.File
}

// newWorld creates a host namespace with lo up and DAD off (so IPv6
// addresses are usable at once, as the tests do not wait for DAD), then
// runs hostSetup, `ip` batch commands that shape the host before any pod
// exists.
func newWorld(t testing.TB, hostSetup ...string) *world {
	t.Helper()
	host := nstest.NewWithLoUp(t)
	disableDAD(t, host)
	if len(hostSetup) > 0 {
		if err := host.Batch(hostSetup); err != nil {
			t.Fatalf("host setup: %v", err)
		}
	}
	dir := t.TempDir()
	// fibguard's directory first: a plugin directory such as /opt/cni/bin
	// may hold an installed fibguard of another version.
	path := []string{setup.fgDir, setup.pluginDir}
	w := &world{
		t:    t,
		host: host,
		// An explicit exec: given none, libcni creates it lazily on first
		// use without a lock, a data race when the first calls run in
		// parallel (TestParallelCycles).
		cni: libcni.NewCNIConfigWithCacheDir(path, filepath.Join(dir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		bridge:   "fgbr" + strconv.FormatInt(int64(os.Getpid()), 36) + "x" + strconv.FormatUint(seq.Add(1), 36),
		dataDir:  filepath.Join(dir, "ipam"),
		logFile:  filepath.Join(dir, "fibguard.log"),
		cacheDir: filepath.Join(dir, "cache"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(w.logFile); err == nil {
				t.Logf("fibguard log:\n%s", b)
			}
		}
	})
	return w
}

// disableDAD turns duplicate address detection off for the namespace's
// existing and future devices.
func disableDAD(t testing.TB, n *nstest.NS) {
	t.Helper()
	for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := n.Sysctl(key, "0"); err != nil {
			t.Fatal(err)
		}
	}
}

// pod is a pod sandbox: its namespace and the runtime's arguments for it.
type pod struct {
	ns *nstest.NS
	rt *libcni.RuntimeConf
}

// newPod creates a pod namespace and, as containerd does for every
// sandbox, brings its lo up with the loopback plugin.
func (w *world) newPod() *pod {
	w.t.Helper()
	p := &pod{ns: nstest.New(w.t)}
	disableDAD(w.t, p.ns)
	id := fmt.Sprintf("fgtest-%d-%d", os.Getpid(), seq.Add(1))
	p.rt = &libcni.RuntimeConf{
		ContainerID: id,
		NetNS:       p.ns.Path(),
		IfName:      "eth0",
		// As kubelet and containerd pass them; IgnoreUnknown=1 lets
		// plugins that do not know the K8S_ keys accept them.
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", id},
			{"K8S_POD_INFRA_CONTAINER_ID", id},
			{"K8S_POD_UID", id},
		},
	}
	lo, err := libcni.NetworkPluginConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"cni-loopback","type":"loopback"}`))
	if err != nil {
		w.t.Fatalf("loopback config: %v", err)
	}
	loRT := *p.rt
	loRT.IfName = "lo"
	if err := w.inHost(func(ctx context.Context) error {
		_, err := w.cni.AddNetwork(ctx, lo, &loRT)
		return err
	}); err != nil {
		w.t.Fatalf("loopback ADD: %v", err)
	}
	w.t.Cleanup(func() {
		if err := w.inHost(func(ctx context.Context) error { return w.cni.DelNetwork(ctx, lo, &loRT) }); err != nil {
			w.t.Errorf("loopback DEL: %v", err)
		}
	})
	return p
}

// inHost runs fn on a thread inside the host namespace. libcni executes
// plugins from the calling thread, so they, and every process they start,
// run in the host namespace rather than the machine's.
func (w *world) inHost(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
	defer cancel()
	return ns.WithNetNSPath(w.host.Path(), func(ns.NetNS) error { return fn(ctx) })
}

// load renders n for this world and parses it as a runtime would.
func (w *world) load(n network) *libcni.NetworkConfigList {
	w.t.Helper()
	b, err := n.conflist(w.bridge, w.dataDir, w.logFile)
	if err != nil {
		w.t.Fatalf("rendering conflist: %v", err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		w.t.Fatalf("parsing conflist %s: %v", b, err)
	}
	return list
}

// add runs ADD of the chain for p, and registers the runtime's DEL of the
// chain for the end of the test, before the namespaces go: a sandbox is
// always torn down, also after a failed ADD. That DEL must succeed.
func (w *world) add(list *libcni.NetworkConfigList, p *pod) (*current.Result, error) {
	w.t.Helper()
	w.t.Cleanup(func() {
		if err := w.del(list, p); err != nil {
			w.t.Errorf("DEL at cleanup: %v", err)
		}
	})
	var res *current.Result
	err := w.inHost(func(ctx context.Context) error {
		r, err := w.cni.AddNetworkList(ctx, list, p.rt)
		if err != nil {
			return err
		}
		if r.Version() != list.CNIVersion {
			return fmt.Errorf("the chain returned a %s result to a %s conflist", r.Version(), list.CNIVersion)
		}
		res, err = current.NewResultFromResult(r)
		if err != nil {
			return fmt.Errorf("converting the %s result: %w", r.Version(), err)
		}
		return nil
	})
	return res, err
}

// del runs the runtime's DEL of the chain for p.
func (w *world) del(list *libcni.NetworkConfigList, p *pod) error {
	return w.inHost(func(ctx context.Context) error { return w.cni.DelNetworkList(ctx, list, p.rt) })
}

// check runs CHECK of the chain for p.
func (w *world) check(list *libcni.NetworkConfigList, p *pod) error {
	return w.inHost(func(ctx context.Context) error { return w.cni.CheckNetworkList(ctx, list, p.rt) })
}

// ping pings addr from the host namespace until it answers, a few times:
// the first echo may be lost while neighbour discovery runs.
func (w *world) ping(addr netip.Addr) error {
	var err error
	for range 5 {
		if _, err = w.host.Exec(pingArgs(addr, 1)...); err == nil {
			return nil
		}
	}
	return err
}

// pingFails asserts that addr does not answer from the host namespace,
// after the namespace has settled, and returns ping's output for the log.
func (w *world) pingFails(addr netip.Addr) (string, error) {
	if err := w.host.Settle(5 * time.Second); err != nil {
		return "", err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", w.host.Name()}, pingArgs(addr, 3)...)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", fmt.Errorf("ping %s answered:\n%s", addr, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func pingArgs(addr netip.Addr, count int) []string {
	family := "-4"
	if addr.Is6() {
		family = "-6"
	}
	return []string{"ping", family, "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", addr.String()}
}

// link is a device as `ip -j link show` describes it.
type link struct {
	Name string `json:"ifname"`
	MAC  string `json:"address"`
}

// links lists the devices of a namespace (nil: the machine's own,
// read-only) of one kind ("" for all, or "veth", "bridge").
func links(n *nstest.NS, kind string) ([]link, error) {
	args := []string{"-j", "link", "show"}
	if kind != "" {
		args = append(args, "type", kind)
	}
	var out []byte
	var err error
	if n == nil {
		out, err = exec.Command("ip", args...).Output()
	} else {
		out, err = n.IP(args...)
	}
	if err != nil {
		return nil, fmt.Errorf("ip link show: %w", err)
	}
	var ls []link
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("ip -j link show: %w", err)
	}
	return ls, nil
}

// reservations lists the addresses host-local has reserved in the world's
// dataDir: one file per address, named after it.
func (w *world) reservations() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(w.dataDir, netName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading host-local's dataDir: %w", err)
	}
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips, nil
}
