package checker

import (
	"encoding/json"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/fibguard/fibguard/fib"
	"github.com/fibguard/fibguard/internal/examplenode"
)

// FuzzCheck feeds Check whatever CNI result JSON decodes to: it must
// never panic, and every finding must be one line with a known code and
// a fix.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.1.0","interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":2,"address":"10.244.0.5/24","gateway":"10.244.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"}]}`,
		`{"interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":7,"address":"127.16.0.2/16","gateway":"::1"},{"address":"::ffff:1.2.3.4/120"}]}`,
		`{"ips":[{"interface":-1,"address":"fe80::1/64","gateway":"fe80::2"},{"address":"0.0.0.0/0"}],"routes":[{"dst":"::/0"}]}`,
	} {
		f.Add(s)
	}
	host := withBridgeAddrsF(f)
	pod := examplenode.Typical()
	f.Fuzz(func(t *testing.T, s string) {
		var res current.Result
		if json.Unmarshal([]byte(s), &res) != nil {
			return
		}
		for _, fd := range Check(Input{Host: host, Pod: pod, Result: &res, Kernel: host.Lookup}, Options{}) {
			if !Known(fd.Code) || fd.Fix == "" || strings.ContainsAny(fd.Message, "\n\r") {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// withBridgeAddrsF is the LoopbackBridge node with 10.244.0.1/24 and
// fd00:10:244::1/64 on cni0 too, for the fuzz target.
func withBridgeAddrsF(f *testing.F) *fib.Model {
	m := examplenode.LoopbackBridge()
	for _, a := range []string{"10.244.0.1/24", "fd00:10:244::1/64"} {
		if err := m.Apply(addr("cni0", a)); err != nil {
			f.Fatalf("apply: %v", err)
		}
	}
	m.Freeze()
	return m
}
