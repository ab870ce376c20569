package nstest

import (
	"os"
	"strings"
	"testing"
)

func TestCleanupDeletesNamespace(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		n := New(t)
		path = n.Path()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("namespace %s not created: %v", n.Name(), err)
		}
	})
	if path == "" {
		t.Skip("inner test was skipped")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after its test ended (stat: %v)", path, err)
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		name string
		new  func(testing.TB) *NS
		up   bool
	}{
		{"New", New, false},
		{"NewWithLoUp", NewWithLoUp, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.new(t)
			out, err := n.IP("-o", "link", "show", "lo")
			if err != nil {
				t.Fatal(err)
			}
			if up := strings.Contains(string(out), ",UP"); up != tt.up {
				t.Errorf("lo up = %v, want %v: %s", up, tt.up, out)
			}
		})
	}
}

func TestBatchNamesFailedCommand(t *testing.T) {
	n := New(t)
	err := n.Batch([]string{
		"link add br0 type bridge",
		"route add 10.0.0.0/8 dev nosuch",
		"link set br0 up",
	})
	if err == nil {
		t.Fatal("Batch succeeded with a route through a missing device")
	}
	if !strings.Contains(err.Error(), `command 2 "route add 10.0.0.0/8 dev nosuch"`) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("error does not name the failed command and ip's message: %v", err)
	}
	if err := n.Batch([]string{"link set br0 up"}); err != nil {
		t.Errorf("Batch of a valid command: %v", err)
	}
}

func TestSysctlAndExec(t *testing.T) {
	n := New(t)
	if err := n.Batch([]string{"link add br0 type bridge"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Sysctl("net.ipv4.conf.br0.route_localnet", "1"); err != nil {
		t.Fatal(err)
	}
	out, err := n.Exec("cat", "/proc/sys/net/ipv4/conf/br0/route_localnet")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "1" {
		t.Errorf("route_localnet in the namespace = %q, want 1", got)
	}
	if err := n.Sysctl("net.ipv4.conf.nosuch.route_localnet", "1"); err == nil {
		t.Error("Sysctl of a missing device succeeded")
	}
	if err := n.Sysctl("kernel.panic", "0"); err == nil {
		t.Error("Sysctl of a machine-wide sysctl succeeded")
	}
}
