package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/fibguard/fibguard/internal/examplenode"
)

// FuzzSimulate feeds arbitrary conflists to Simulate: it must return a plan
// or an error, never panic, and a plan must hold a result whose pod
// addresses are on the pod's interface.
func FuzzSimulate(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.conflist"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(conflist("0.3.1", `{"type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"}], "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.1.0.9"}]}}`)))
	f.Add([]byte(conflist("1.0.0", `{"type": "bridge", "isDefaultGateway": true, "ipam": {"type": "host-local", "subnet": "fd00::/120", "rangeStart": "fd00::10", "rangeEnd": "fd00::11", "gateway": "fd00::10"}}`)))
	node := examplenode.Typical()
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := libcni.ConfListFromBytes(data)
		if err != nil {
			return
		}
		p, err := Simulate(node, list, Options{})
		if err != nil {
			return
		}
		for _, ipc := range p.Result.IPs {
			if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(p.Result.Interfaces) || p.Result.Interfaces[*ipc.Interface].Sandbox == "" {
				t.Errorf("IP %s is not on the pod's interface: %s", ipc.Address.String(), p.Result)
			}
		}
	})
}
