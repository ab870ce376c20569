package plugin

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/fibguard/fibguard/internal/hostile"
)

// absentNetns is a CNI_NETNS that does not exist.
const absentNetns = "/var/run/netns/fibguard-test-absent"

// cniError decodes the error JSON a failed command must print.
func cniError(t *testing.T, o outcome) types.Error {
	t.Helper()
	var e types.Error
	if err := json.Unmarshal(o.stdout, &e); err != nil {
		t.Fatalf("stdout is not CNI error JSON: %v\nstdout: %s\nstderr: %s", err, o.stdout, o.stderr)
	}
	return e
}

// TestBadInput runs the binary as a runtime would, with input it must
// refuse: each case gives CNI error JSON with the spec's code (fibguard's
// own ≥ 100), a non-zero exit and no panic. Every case is refused before
// any namespace is read, so they run in the test's own namespace.
func TestBadInput(t *testing.T) {
	bad := hostile.Make(t)
	prev := json.RawMessage(prevResult100)
	valid := confJSON(t, "1.0.0", map[string]any{"prevResult": prev})
	withEnv := func(command string, change map[string]string) map[string]string {
		env := cniEnv(command, absentNetns)
		for k, v := range change {
			env[k] = v
		}
		return env
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin []byte
		code  uint
		// msg must appear in the message
		msg string
	}{
		{"malformed JSON", withEnv("ADD", nil), []byte(`{"cniVersion":"1.0.0","name":`), types.ErrDecodingFailure, "unmarshal"},
		{"empty stdin", withEnv("ADD", nil), nil, types.ErrDecodingFailure, ""},
		{"missing cniVersion", withEnv("ADD", nil), confJSON(t, "", map[string]any{"cniVersion": nil, "prevResult": prev}),
			types.ErrIncompatibleCNIVersion, "incompatible CNI versions"},
		{"unknown cniVersion", withEnv("ADD", nil), confJSON(t, "9.9.9", map[string]any{"prevResult": prev}),
			types.ErrIncompatibleCNIVersion, "incompatible CNI versions"},
		{"cniVersion 0.2.0 (no interfaces in results)", withEnv("ADD", nil), confJSON(t, "0.2.0", nil),
			types.ErrIncompatibleCNIVersion, "incompatible CNI versions"},
		{"missing name", withEnv("ADD", nil), confJSON(t, "1.0.0", map[string]any{"name": nil, "prevResult": prev}),
			types.ErrInvalidNetworkConfig, "missing network name"},
		{"missing prevResult", withEnv("ADD", nil), confJSON(t, "1.0.0", nil), types.ErrInvalidNetworkConfig, "must be listed after"},
		{"prevResult of another version", withEnv("ADD", nil), confJSON(t, "1.0.0", map[string]any{"prevResult": json.RawMessage(prevResult040)}),
			types.ErrIncompatibleCNIVersion, `prevResult has cniVersion "0.4.0"`},
		{"garbage prevResult", withEnv("ADD", nil), confJSON(t, "1.0.0", map[string]any{"prevResult": map[string]any{"cniVersion": "1.0.0", "ips": "x"}}),
			types.ErrDecodingFailure, "prevResult"},
		{"bad mode", withEnv("ADD", nil), confJSON(t, "1.0.0", map[string]any{"mode": "audit", "prevResult": prev}),
			types.ErrInvalidNetworkConfig, `mode: "audit"`},
		{"unknown check code", withEnv("ADD", nil), confJSON(t, "1.0.0", map[string]any{"checks": map[string]string{"FG999": "off"}, "prevResult": prev}),
			types.ErrInvalidNetworkConfig, `unknown check code "FG999"`},
		{"netns path absent", withEnv("ADD", nil), valid, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"netns path not a namespace", withEnv("ADD", map[string]string{"CNI_NETNS": "/etc/hostname"}), valid,
			types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"netns a FIFO (an open would block)", withEnv("ADD", map[string]string{"CNI_NETNS": bad.FIFO}), valid,
			types.ErrInvalidEnvironmentVariables, "named pipe (FIFO), not a network namespace"},
		{"netns a FIFO, CHECK", withEnv("CHECK", map[string]string{"CNI_NETNS": bad.FIFO}), valid,
			types.ErrInvalidEnvironmentVariables, "named pipe (FIFO), not a network namespace"},
		{"netns a directory", withEnv("ADD", map[string]string{"CNI_NETNS": bad.Dir}), valid,
			types.ErrInvalidEnvironmentVariables, "directory, not a network namespace"},
		{"netns a device", withEnv("ADD", map[string]string{"CNI_NETNS": bad.Device}), valid,
			types.ErrInvalidEnvironmentVariables, "character device, not a network namespace"},
		{"netns of another kind", withEnv("ADD", map[string]string{"CNI_NETNS": "/proc/self/ns/mnt"}), valid,
			types.ErrInvalidEnvironmentVariables, "not a network namespace"},
		{"netns is the plugin's own", withEnv("ADD", map[string]string{"CNI_NETNS": "/proc/self/ns/net"}), valid,
			types.ErrInvalidNetNS, "plugin's own network namespace"},
		{"CNI_NETNS missing", withEnv("ADD", map[string]string{"CNI_NETNS": ""}), valid, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"CNI_CONTAINERID missing", withEnv("ADD", map[string]string{"CNI_CONTAINERID": ""}), valid, types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID"},
		{"CNI_IFNAME missing", withEnv("ADD", map[string]string{"CNI_IFNAME": ""}), valid, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"CNI_PATH missing", withEnv("ADD", map[string]string{"CNI_PATH": ""}), valid, types.ErrInvalidEnvironmentVariables, "CNI_PATH"},
		{"unknown CNI_COMMAND", withEnv("REPAIR", nil), valid, types.ErrInvalidEnvironmentVariables, "unknown CNI_COMMAND"},
		{"oversize stdin", withEnv("ADD", nil), oversize(t), types.ErrIOFailure, "larger than 1048576 bytes"},
		{"CHECK with cniVersion 0.3.1", withEnv("CHECK", nil), confJSON(t, "0.3.1", map[string]any{"prevResult": json.RawMessage(prevResult040)}),
			types.ErrIncompatibleCNIVersion, "does not allow CHECK"},
		{"CHECK without prevResult", withEnv("CHECK", nil), confJSON(t, "1.0.0", nil), types.ErrInvalidNetworkConfig, "no prevResult"},
		{"STATUS with cniVersion 1.0.0", withEnv("STATUS", nil), confJSON(t, "1.0.0", nil), types.ErrIncompatibleCNIVersion, "does not allow STATUS"},
		{"STATUS with an invalid configuration", withEnv("STATUS", nil), confJSON(t, "1.1.0", map[string]any{"failurePolicy": "sometimes"}),
			types.ErrPluginNotAvailable, `failurePolicy: "sometimes"`},
		{"GC with cniVersion 1.0.0", withEnv("GC", nil), confJSON(t, "1.0.0", nil), types.ErrIncompatibleCNIVersion, "does not allow GC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := invocation{env: tc.env, stdin: tc.stdin}.run(t)
			if o.exit == 0 {
				t.Fatalf("exit 0, want a failure\nstdout: %s", o.stdout)
			}
			e := cniError(t, o)
			if e.Code != tc.code {
				t.Errorf("code: got %d, want %d (msg %q)", e.Code, tc.code, e.Msg)
			}
			if e.Msg == "" || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg %q lacks %q", e.Msg, tc.msg)
			}
		})
	}
}

// oversize is a valid configuration padded past MaxConfigSize.
func oversize(t *testing.T) []byte {
	return confJSON(t, "1.0.0", map[string]any{"padding": strings.Repeat("x", MaxConfigSize)})
}

func TestVersion(t *testing.T) {
	o := invocation{env: map[string]string{"CNI_COMMAND": "VERSION"}, stdin: []byte(`{"cniVersion":"1.1.0"}`)}.run(t)
	if o.exit != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", o.exit, o.stdout, o.stderr)
	}
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(o.stdout, &v); err != nil {
		t.Fatalf("decode %s: %v", o.stdout, err)
	}
	want := []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
	if !slices.Equal(v.SupportedVersions, want) {
		t.Errorf("supportedVersions: got %q, want %q", v.SupportedVersions, want)
	}
}

// TestAbout: without CNI_COMMAND the binary says what it is, on stderr,
// and exits 0 without reading stdin.
func TestAbout(t *testing.T) {
	o := invocation{env: map[string]string{}}.run(t)
	if o.exit != 0 || len(o.stdout) != 0 {
		t.Fatalf("exit %d, stdout %q", o.exit, o.stdout)
	}
	for _, w := range []string{"CNI fibguard plugin", "0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"} {
		if !bytes.Contains(o.stderr, []byte(w)) {
			t.Errorf("stderr %q lacks %q", o.stderr, w)
		}
	}
}

// TestDelAlwaysSucceeds: DEL needs no namespace, prevResult or valid
// fibguard fields, and may be repeated.
func TestDelAlwaysSucceeds(t *testing.T) {
	del := func(netns string) map[string]string { return cniEnv("DEL", netns) }
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin []byte
	}{
		{"netns gone", del(absentNetns), confJSON(t, "1.0.0", map[string]any{"prevResult": json.RawMessage(prevResult100)})},
		{"no CNI_NETNS", del(""), confJSON(t, "1.0.0", map[string]any{"prevResult": json.RawMessage(prevResult100)})},
		{"no prevResult", del(absentNetns), confJSON(t, "1.0.0", nil)},
		{"garbage prevResult", del(absentNetns), confJSON(t, "1.0.0", map[string]any{"prevResult": map[string]any{"ips": 42}})},
		{"prevResult not an object", del(absentNetns), confJSON(t, "1.0.0", map[string]any{"prevResult": "x"})},
		{"prevResult of another version", del(absentNetns), confJSON(t, "1.0.0", map[string]any{"prevResult": json.RawMessage(prevResult040)})},
		{"invalid fibguard fields", del(absentNetns), confJSON(t, "0.3.1", map[string]any{"mode": "audit", "checks": map[string]string{"FG999": "x"}})},
		{"netns not a namespace", del("/etc/hostname"), confJSON(t, "1.1.0", nil)},
		{"large config within the limit", del(absentNetns), confJSON(t, "1.0.0", map[string]any{"padding": strings.Repeat("x", MaxConfigSize-100)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 {
				o := invocation{env: tc.env, stdin: tc.stdin}.run(t)
				if o.exit != 0 || len(o.stdout) != 0 {
					t.Fatalf("DEL #%d: exit %d, stdout %s, stderr %s", i+1, o.exit, o.stdout, o.stderr)
				}
			}
		})
	}
}

func TestStatusAndGC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin []byte
	}{
		{"STATUS", map[string]string{"CNI_COMMAND": "STATUS", "CNI_PATH": "/opt/cni/bin"}, confJSON(t, "1.1.0", map[string]any{"mode": "warn"})},
		{"GC", map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"}, confJSON(t, "1.1.0", map[string]any{
			"cni.dev/valid-attachments": []map[string]string{{"containerID": "4f1f5c7e2a0b", "ifname": "eth0"}},
		})},
		{"GC with invalid fibguard fields", map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"}, confJSON(t, "1.1.0", map[string]any{"mode": 1})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := invocation{env: tc.env, stdin: tc.stdin}.run(t)
			if o.exit != 0 || len(o.stdout) != 0 {
				t.Fatalf("exit %d, stdout %s, stderr %s", o.exit, o.stdout, o.stderr)
			}
		})
	}
}
