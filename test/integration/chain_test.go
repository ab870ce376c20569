package integration

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/fibguard/fibguard/checker"
)

// Host setups: `ip` commands run in the host namespace before any pod.
var (
	// nodeAddress gives the node the address 10.99.0.2 on a device of its
	// own (dummy links may be missing from the test kernel: a bridge).
	nodeAddress = []string{
		"link add fgnode0 type bridge",
		"link set fgnode0 up",
		"addr add 10.99.0.2/32 dev fgnode0",
	}
	// shadow routes the lower half of 10.88.0.0/24 to a veth pair: a more
	// specific route than the pod subnet's, to the wrong device.
	shadow = []string{
		"link add fgshadow0 type veth peer name fgshadow1",
		"link set fgshadow0 up",
		"link set fgshadow1 up",
		"route add 10.88.0.0/25 dev fgshadow0",
	}
)

// TestAccepted runs healthy chains with fibguard: ADD must succeed and
// return exactly what the same chain returns without fibguard (fibguard
// passes prevResult on unchanged), the result must match the kernel, the
// pod must answer from the host, and CHECK must pass.
func TestAccepted(t *testing.T) {
	tests := []struct {
		name string
		net  network
		// unreachable: the network is broken, but fibguard is told to let it
		// pass (warn mode), so the pod must not answer.
		unreachable bool
		// logged: a finding fibguard must still report, in its log.
		logged checker.Code
	}{
		{name: "bridge", net: bridgeNet("10.88.0.0/24")},
		{name: "bridge cniVersion 0.3.1", net: bridgeNet("10.88.0.0/24").withVersion("0.3.1")},
		{name: "bridge cniVersion 0.4.0", net: bridgeNet("10.88.0.0/24").withVersion("0.4.0")},
		{name: "bridge cniVersion 1.1.0", net: bridgeNet("10.88.0.0/24").withVersion("1.1.0")},
		{name: "ptp kindnet-style", net: ptpNet("10.244.1.0/24")},
		{name: "bridge IPv6", net: bridgeNet("fd00:88::/64")},
		{name: "bridge dual-stack", net: bridgeNet("10.88.0.0/24", "fd00:88::/64")},
		{name: "ptp dual-stack", net: ptpNet("10.244.1.0/24", "fd00:244:1::/64")},
		{
			name:        "warn mode passes a loopback bridge",
			net:         bridgeNet("127.16.0.0/16").withFibguard(map[string]any{"mode": "warn"}),
			unreachable: true,
			logged:      checker.CodeHostLoopback,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needPlugins(t)
			net := tc.net
			if net.fibguard == nil {
				net = net.withFibguard(nil)
			}

			// The chain as it runs today, without fibguard.
			bw := newWorld(t)
			bp := bw.newPod()
			want, err := bw.add(bw.load(net.withoutFibguard()), bp)
			if err != nil {
				t.Fatalf("ADD without fibguard: %v", err)
			}
			assertMatchesKernel(t, bw, bp, want)
			if !tc.unreachable {
				assertReachable(t, bw, want)
			}

			needFibguard(t)
			w := newWorld(t)
			p := w.newPod()
			list := w.load(net)
			got, err := w.add(list, p)
			if err != nil {
				t.Fatalf("ADD with fibguard: %v", err)
			}
			if gotN, wantN := normalized(t, got, w, p), normalized(t, want, bw, bp); gotN != wantN {
				t.Errorf("fibguard changed the result.\ngot:\n%s\nwant (the chain without fibguard):\n%s", gotN, wantN)
			} else {
				t.Logf("result, as without fibguard:\n%s", gotN)
			}
			assertMatchesKernel(t, w, p, got)
			if tc.logged != "" {
				if log, err := os.ReadFile(w.logFile); err != nil {
					t.Errorf("reading fibguard's log: %v", err)
				} else if !strings.Contains(string(log), string(tc.logged)) {
					t.Errorf("fibguard's log does not report %s:\n%s", tc.logged, log)
				}
			}
			if tc.unreachable {
				for _, ipc := range got.IPs {
					if out, err := w.pingFails(prefixOf(ipc).Addr()); err != nil {
						t.Errorf("host -> pod: %v", err)
					} else {
						t.Logf("host -> pod %s fails as expected: %s", prefixOf(ipc).Addr(), lastLine(out))
					}
				}
				return
			}
			assertReachable(t, w, got)
			if ok, _ := version.GreaterThanOrEqualTo(net.cniVersion(), "0.4.0"); ok {
				if err := w.check(list, p); err != nil {
					t.Errorf("CHECK of a healthy pod: %v", err)
				}
			}
		})
	}
}

// TestRejected runs broken chains. Without fibguard, ADD succeeds and the
// pod is silently unreachable (where ping can show it); with fibguard, ADD
// fails with a CNI error naming the check, and the runtime's DEL of the
// whole chain then leaves no veth and no IPAM reservation behind.
func TestRejected(t *testing.T) {
	tests := []struct {
		name string
		host []string
		net  network
		code checker.Code
		// silent: without fibguard, host -> pod traffic fails. (A pod IP
		// equal to a node address still answers ping: the node answers.)
		silent bool
	}{
		{
			name:   "loopback bridge 127.16.0.0/16",
			net:    bridgeNet("127.16.0.0/16"),
			code:   checker.CodeHostLoopback,
			silent: true,
		},
		{
			name: "pod IP equal to a node address",
			host: nodeAddress,
			net:  network{ranges: []ipRange{subnet("10.99.0.0/24").only("10.99.0.2")}},
			code: checker.CodeNodeAddress,
		},
		{
			name:   "shadowed pod subnet",
			host:   shadow,
			net:    bridgeNet("10.88.0.0/24"),
			code:   checker.CodeShadowed,
			silent: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needPlugins(t)

			bw := newWorld(t, tc.host...)
			bp := bw.newPod()
			res, err := bw.add(bw.load(tc.net.withoutFibguard()), bp)
			if err != nil {
				t.Fatalf("ADD without fibguard: %v", err)
			}
			assertMatchesKernel(t, bw, bp, res)
			if tc.silent {
				for _, ipc := range res.IPs {
					ip := prefixOf(ipc).Addr()
					out, err := bw.pingFails(ip)
					if err != nil {
						t.Fatalf("without fibguard, host -> pod: %v", err)
					}
					t.Logf("without fibguard, ADD succeeds with pod IP %s, yet host -> pod fails: %s", ip, lastLine(out))
				}
			}

			needFibguard(t)
			w := newWorld(t, tc.host...)
			p := w.newPod()
			list := w.load(tc.net.withFibguard(nil))
			vethsBefore := vethNames(t, w.host)
			_, err = w.add(list, p)
			assertRejected(t, err, tc.code)

			reserved, err := w.reservations()
			if err != nil {
				t.Fatal(err)
			}
			if len(reserved) == 0 {
				t.Fatalf("after the rejected ADD host-local holds no reservation: the chain did not get as far as IPAM")
			}
			if err := w.del(list, p); err != nil {
				t.Fatalf("DEL after a rejected ADD: %v", err)
			}
			if after := vethNames(t, w.host); !slices.Equal(after, vethsBefore) {
				t.Errorf("veths in the host namespace after DEL: %v, before ADD: %v", after, vethsBefore)
			}
			if left, err := w.reservations(); err != nil {
				t.Error(err)
			} else if len(left) > 0 {
				t.Errorf("host-local still reserves %v after DEL (reserved %v after ADD)", left, reserved)
			}
			if _, ok := mustLinks(t, p.ns)["eth0"]; ok {
				t.Errorf("the pod's eth0 survived DEL")
			}
		})
	}
}

// TestCheckRevalidates breaks a running pod's network after ADD, as a
// later change on the node might: CHECK must then fail with the finding.
func TestCheckRevalidates(t *testing.T) {
	needFibguard(t)
	w := newWorld(t, shadow[0], shadow[1], shadow[2])
	p := w.newPod()
	list := w.load(bridgeNet("10.88.0.0/24").withFibguard(nil))
	res, err := w.add(list, p)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := w.check(list, p); err != nil {
		t.Fatalf("CHECK before the change: %v", err)
	}
	ip := prefixOf(res.IPs[0]).Addr()
	if _, err := w.host.IP("route", "add", ip.String()+"/32", "dev", "fgshadow0"); err != nil {
		t.Fatal(err)
	}
	assertRejected(t, w.check(list, p), checker.CodeShadowed)
}

// assertRejected checks that err is the CNI error of a rejection: code at
// least 100 (plugin-specific, not one of the spec's generic codes) and the
// check's code in the message a person reads in kubelet's event.
func assertRejected(t *testing.T, err error, code checker.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("the chain was accepted; want a rejection with %s", code)
	}
	var cniErr *types.Error
	if !errors.As(err, &cniErr) {
		t.Fatalf("error is not a CNI error (%T): %v", err, err)
	}
	if cniErr.Code < 100 {
		t.Errorf("CNI error code %d, want >= 100: %v", cniErr.Code, cniErr)
	}
	if !strings.Contains(cniErr.Msg, string(code)) {
		t.Errorf("CNI error message does not name %s: %q", code, cniErr.Msg)
	}
	if !strings.Contains(cniErr.Details, string(code)) {
		t.Errorf("CNI error details do not hold the %s finding: %q", code, cniErr.Details)
	}
	t.Logf("rejected, code %d: %s", cniErr.Code, cniErr.Msg)
}

// lastLine returns the last line of s, e.g. ping's summary.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
