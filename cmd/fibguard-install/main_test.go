package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	pod := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantMode   string
		wantOnExit bool
		wantErr    string
	}{
		{name: "defaults in a pod", env: pod, wantMode: "run", wantOnExit: true},
		{name: "check", args: []string{"-check"}, env: pod, wantMode: "check", wantOnExit: true},
		{name: "uninstall now", args: []string{"-uninstall"}, env: pod, wantMode: "uninstall", wantOnExit: true},
		{name: "env turns off uninstall on exit", env: with(pod, "FIBGUARD_UNINSTALL_ON_EXIT", "false"), wantMode: "run"},
		{name: "flag beats env", args: []string{"-uninstall-on-exit=true"}, env: with(pod, "FIBGUARD_UNINSTALL_ON_EXIT", "false"), wantMode: "run", wantOnExit: true},
		{name: "no kubeconfig outside a pod", args: []string{"-kubeconfig-name="}, wantMode: "run", wantOnExit: true},
		{name: "kubeconfig needs the API server", wantErr: "KUBERNETES_SERVICE_HOST"},
		{name: "bad env bool", env: with(pod, "FIBGUARD_UNINSTALL_ON_EXIT", "maybe"), wantErr: "environment"},
		{name: "bad env duration", env: with(pod, "FIBGUARD_RESYNC", "soon"), wantErr: "environment"},
		{name: "bad mode", args: []string{"-mode=audit"}, env: pod, wantErr: `mode "audit"`},
		{name: "bad options", args: []string{"-options=[1]"}, env: pod, wantErr: "JSON object"},
		{name: "own kubeconfig option conflicts", args: []string{`-options={"kubeconfig":"/k"}`}, env: pod, wantErr: "kubeconfig-name"},
		{name: "kubeconfig name is a name", args: []string{"-kubeconfig-name=../k"}, env: pod, wantErr: "not a path"},
		{name: "check and uninstall", args: []string{"-check", "-uninstall"}, env: pod, wantErr: "exclude"},
		{name: "live", args: []string{"-live"}, env: pod, wantMode: "live", wantOnExit: true},
		{name: "live and check", args: []string{"-live", "-check"}, env: pod, wantErr: "exclude"},
		{name: "stray argument", args: []string{"now"}, env: pod, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, mode, exit, err := parse(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if mode != tt.wantMode || exit.onExit != tt.wantOnExit {
				t.Errorf("parse = %q, %v; want %q, %v", mode, exit.onExit, tt.wantMode, tt.wantOnExit)
			}
		})
	}
}

func with(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range env {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// TestParseEventBinary: the event binary is the one next to the plugin
// binary unless named, and "none" installs none.
func TestParseEventBinary(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "/opt/fibguard/fibguard-event"},
		{[]string{"-binary=/x/fibguard"}, nil, "/x/fibguard-event"},
		{nil, map[string]string{"FIBGUARD_EVENT_BINARY": "/y/ev"}, "/y/ev"},
		{[]string{"-event-binary=none"}, map[string]string{"FIBGUARD_EVENT_BINARY": "/y/ev"}, ""},
	}
	for _, tt := range tests {
		cfg, _, _, err := parse(append([]string{"-kubeconfig-name="}, tt.args...), func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if cfg.EventBinary != tt.want {
			t.Errorf("%v %v: event binary %q, want %q", tt.args, tt.env, cfg.EventBinary, tt.want)
		}
	}
	if _, _, _, err := parse([]string{"-kubeconfig-name=", "-event-binary=rel/ev"}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "event binary") {
		t.Errorf("a relative event binary: %v, want an error", err)
	}
}

// TestParseKubeconfig: the installer writes the kubeconfig into the
// mounted conf dir, and the entry names it by the host's path, where the
// plugin finds it.
func TestParseKubeconfig(t *testing.T) {
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
	cfg, _, _, err := parse([]string{"-conf-dir=/host/etc/cni/net.d", `-options={"serviceCIDRs":["10.96.0.0/12"]}`}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Kubeconfig; k == nil || k.Path != "/host/etc/cni/net.d/fibguard-kubeconfig" || k.Server != "https://[fd00::1]:6443" {
		t.Errorf("kubeconfig %+v", cfg.Kubeconfig)
	}
	var path string
	if err := json.Unmarshal(cfg.Entry.Options["kubeconfig"], &path); err != nil || path != "/etc/cni/net.d/fibguard-kubeconfig" {
		t.Errorf("entry's kubeconfig = %q (%v), want the host's path", path, err)
	}
	if string(cfg.Entry.Options["serviceCIDRs"]) != `["10.96.0.0/12"]` {
		t.Errorf("options lost: %s", cfg.Entry.Options)
	}
}

// TestParseNodeName: the DaemonSet's NODE_NAME goes into the entry, unless
// the options name the node themselves.
func TestParseNodeName(t *testing.T) {
	tests := []struct {
		options string
		want    string
	}{
		{`{}`, `"node-1"`},
		{`{"nodeName":"other"}`, `"other"`},
	}
	env := map[string]string{"NODE_NAME": "node-1"}
	for _, tt := range tests {
		cfg, _, _, err := parse([]string{"-kubeconfig-name=", "-options=" + tt.options}, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := string(cfg.Entry.Options["nodeName"]); got != tt.want {
			t.Errorf("options %s: nodeName = %s, want %s", tt.options, got, tt.want)
		}
	}
}
