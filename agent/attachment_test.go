package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibguard/fibguard/internal/hostile"
)

const testResult = `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/p"}],` +
	`"ips":[{"address":"10.244.0.5/24","gateway":"10.244.0.1","interface":0}]}`

// testConflist is a network that chains fibguard, with settings.
const testConflist = `{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},` +
	`{"type":"fibguard","mode":"warn","serviceCIDRs":["10.96.0.0/12"],"checks":{"FG003":"off"}}]}`

// cacheJSON renders a cache file as libcni writes one.
func cacheJSON(t testing.TB, mutate func(*cacheFile)) []byte {
	t.Helper()
	c := cacheFile{
		Kind: cacheKind, ContainerID: "c1", Config: []byte(testConflist), IfName: "eth0", NetworkName: "pods",
		CNIArgs: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web-0"}, {"K8S_POD_UID", "0b1c"}},
		Result:  json.RawMessage(testResult),
	}
	if mutate != nil {
		mutate(&c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadAttachment reads a cache file as libcni writes it: the pod from
// CNI_ARGS, fibguard's settings from its entry, the result.
func TestReadAttachment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pods-c1-eth0")
	if err := os.WriteFile(path, cacheJSON(t, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := ReadAttachment(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.File != "pods-c1-eth0" || a.ContainerID != "c1" || a.Network != "pods" || a.IfName != "eth0" {
		t.Errorf("attachment %+v", a)
	}
	if a.Pod.Namespace != "default" || a.Pod.Name != "web-0" || a.Pod.UID != "0b1c" {
		t.Errorf("pod %+v", a.Pod)
	}
	c := a.Config
	if c.Mode != "warn" || len(c.ServiceCIDRs) != 1 || !c.Options.Disabled["FG003"] || c.Result == nil || len(c.Result.IPs) != 1 {
		t.Errorf("config %+v", c)
	}
}

// TestReadAttachmentRefuses: every hostile or broken cache file gets an
// error naming the file and what is wrong, at once; a network without
// fibguard is errNotGuarded.
func TestReadAttachmentRefuses(t *testing.T) {
	p := hostile.Make(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	big := make([]byte, MaxCacheFile+1)
	tests := []struct {
		class, path, want string
	}{
		{"a FIFO blocks a plain open", p.FIFO, "named pipe (FIFO), not a regular file"},
		{"a symbolic link is not what the runtime writes", p.Link, "symbolic link, not a regular file"},
		{"a directory", p.Dir, "directory, not a regular file"},
		{"a device", p.Device, "character device, not a regular file"},
		{"a socket", p.Socket, "socket, not a regular file"},
		{"too large", write("big", big), "larger than"},
		{"not JSON", write("junk", []byte("{")), "not a CNI cache file"},
		{"another kind", write("kind", cacheJSON(t, func(c *cacheFile) { c.Kind = "other" })), `kind "other"`},
		{"no container", write("noid", cacheJSON(t, func(c *cacheFile) { c.ContainerID = "" })), "not a CNI cache file"},
		{"a CNI_ARGS key twice", write("dup", cacheJSON(t, func(c *cacheFile) {
			c.CNIArgs = append(c.CNIArgs, [2]string{"K8S_POD_NAMESPACE", "kube-system"})
		})), "more than once"},
		{"a separator inside a CNI_ARGS value", write("sep", cacheJSON(t, func(c *cacheFile) {
			c.CNIArgs[2][1] = "web;K8S_POD_NAMESPACE=kube-system"
		})), "holds ';' or '='"},
		{"an invalid fibguard entry", write("bad", cacheJSON(t, func(c *cacheFile) {
			c.Config = []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"fibguard","mode":"bogus"}]}`)
		})), "fibguard's entry"},
		{"a result that is not one", write("res", cacheJSON(t, func(c *cacheFile) { c.Result = json.RawMessage(`[1]`) })), "fibguard's entry"},
		{"a configuration that is not JSON", write("conf", cacheJSON(t, func(c *cacheFile) { c.Config = []byte("{") })), "cached network configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			_, err := ReadAttachment(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("ReadAttachment(%s) = %v, want an error naming the file and containing %q", tt.path, err, tt.want)
			}
		})
	}
	t.Run("a network without fibguard", func(t *testing.T) {
		path := write("plain", cacheJSON(t, func(c *cacheFile) {
			c.Config = []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]}`)
		}))
		if _, err := ReadAttachment(path); !errors.Is(err, errNotGuarded) {
			t.Fatalf("ReadAttachment = %v, want errNotGuarded", err)
		}
	})
}

// FuzzReadAttachment: whatever a cache file holds, ReadAttachment never
// panics, and an attachment it accepts has fibguard's settings, a result
// and a pod that CNI_ARGS names once.
func FuzzReadAttachment(f *testing.F) {
	f.Add(string(cacheJSON(f, nil)))
	f.Add(`{"kind":"cniCacheV1","containerId":"c","networkName":"n","ifName":"eth0","config":"e30=","result":{}}`)
	f.Add(`{"kind":"cniCacheV1","containerId":"c","networkName":"n","ifName":"eth0","cniArgs":[["K8S_POD_NAME","a"],["K8S_POD_NAME","b"]]}`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(dir, "pods-c-eth0")
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := ReadAttachment(path)
		if err != nil {
			return
		}
		if a.Config == nil || a.ContainerID == "" || a.Network == "" || a.IfName == "" {
			t.Fatalf("accepted %q as %+v", s, a)
		}
		if strings.Count(s, "K8S_POD_NAME\"") > 1 && a.Pod.Name != "" {
			t.Fatalf("accepted a pod named twice: %q", s)
		}
	})
}
