package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-05T08:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name    string
		bi      debug.BuildInfo
		release string
		want    string
	}{
		{"checkout build", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"", "(devel), commit 0123456789abcdef0123456789abcdef01234567 (2026-12-05T08:00:00Z, modified), go1.26.8"},
		{"go install", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}},
			"", "v0.2.0, commit unknown, go1.26.8"},
		{"release stamp wins", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]},
			"v0.1.0", "v0.1.0, commit 0123456789abcdef0123456789abcdef01234567"},
		{"nothing recorded", debug.BuildInfo{}, "", "unknown, commit unknown"},
	}
	for _, tt := range tests {
		if got := fromBuildInfo(&tt.bi, tt.release).String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRequested(t *testing.T) {
	tests := []struct {
		args string
		want bool
	}{
		{"", false},
		{"--version", true},
		{"-version", true},
		{"-kubeconfig none --version", true},
		{"--version=true", true},
		{"--version=false", false},
		{"-- --version", false},
		{"-versions", false},
		{"version", false},
	}
	for _, tt := range tests {
		if got := Requested(strings.Fields(tt.args)); got != tt.want {
			t.Errorf("Requested(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestGet(t *testing.T) {
	in := Get()
	if in.Version == "" || strings.ContainsAny(in.String(), "\t\n") {
		t.Errorf("Get() = %+v, String %q", in, in.String())
	}
}
