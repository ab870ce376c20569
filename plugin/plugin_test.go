package plugin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/fibguard/fibguard/checker"
)

// inProcess is a Plugin whose output the test reads, reaching the pod from
// the podNet's host namespace.
func inProcess(pn *podNet) (*Plugin, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &Plugin{HostNetns: pn.host.Path(), Stdout: &stdout, Stderr: &stderr}, &stdout, &stderr
}

func cmdArgs(netns string, stdin []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "4f1f5c7e2a0b", Netns: netns, IfName: "eth0", Path: "/opt/cni/bin", StdinData: stdin}
}

func TestRecovered(t *testing.T) {
	f := recovered("ADD", func(*skel.CmdArgs) error { panic("boom") })
	err := f(cmdArgs("", nil))
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want a *types.Error", err, err)
	}
	if e.Code != CodeInternal || e.Msg != "fibguard: internal error: ADD: panic: boom" {
		t.Errorf("got %d %q", e.Code, e.Msg)
	}
	if !strings.Contains(e.Details, "plugin_test.go") {
		t.Errorf("details lack the stack: %q", e.Details)
	}
}

func TestRejection(t *testing.T) {
	warn := checker.Finding{Code: "FG040", Severity: checker.SeverityWarning, Message: "model and kernel disagree", Fix: "report it"}
	fg001 := checker.Finding{Code: "FG001", Severity: checker.SeverityError, Message: "pod IP 127.16.0.2 would be delivered to lo", Fix: "renumber"}
	fg020 := checker.Finding{Code: "FG020", Severity: checker.SeverityError, Message: "pod IP 127.16.0.2 is a loopback address", Fix: "renumber"}
	for _, tc := range []struct {
		name     string
		findings []checker.Finding
		msg      string
	}{
		{"none", nil, ""},
		{"only warnings", []checker.Finding{warn}, ""},
		{"one error", []checker.Finding{fg001}, "fibguard: FG001 pod IP 127.16.0.2 would be delivered to lo"},
		{"first error named, others counted", []checker.Finding{warn, fg001, fg020},
			"fibguard: FG001 pod IP 127.16.0.2 would be delivered to lo (+2 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := rejection(tc.findings)
			if tc.msg == "" {
				if e != nil {
					t.Fatalf("got %v, want no rejection", e)
				}
				return
			}
			if e == nil || e.Code != CodeRejected || e.Msg != tc.msg {
				t.Fatalf("got %+v, want code %d msg %q", e, CodeRejected, tc.msg)
			}
			var details struct {
				Findings []checker.Finding `json:"findings"`
			}
			if err := json.Unmarshal([]byte(e.Details), &details); err != nil || len(details.Findings) != len(tc.findings) {
				t.Errorf("details %s: %v, want %d findings", e.Details, err, len(tc.findings))
			}
		})
	}
}

// TestFailurePolicy: when fibguard cannot read the host namespace, Fail
// fails ADD with CodeInternal and Ignore passes the prevResult on.
func TestFailurePolicy(t *testing.T) {
	pn := newBridgePodNet(t, "10.22.0.1/24", "10.22.0.2/24")
	notNetns := filepath.Join(t.TempDir(), "not-a-namespace")
	if err := os.WriteFile(notNetns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	prev := pn.prevResult(t, "1.0.0")
	for _, tc := range []struct {
		policy string
		code   uint // 0: success
	}{
		{"Fail", CodeInternal},
		{"Ignore", 0},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			p, stdout, stderr := inProcess(pn)
			p.HostNetns = notNetns
			err := p.Add(cmdArgs(pn.pod.Path(), confJSON(t, "1.0.0", map[string]any{"prevResult": prev, "failurePolicy": tc.policy})))
			if tc.code != 0 {
				var e *types.Error
				if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Msg, "internal error") {
					t.Fatalf("got %v, want code %d", err, tc.code)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout holds %s, want nothing", stdout)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if same, err := sameJSON(stdout.Bytes(), prev); err != nil || !same {
				t.Errorf("result is not the prevResult (%v): %s", err, stdout)
			}
			if !strings.Contains(stderr.String(), "failurePolicy Ignore") {
				t.Errorf("the ignored error is not logged:\n%s", stderr)
			}
		})
	}
}

// TestWarnModeAndLogFile: in warn mode CHECK passes a rejected pod, and
// the log file receives one JSON record a line, findings included.
func TestWarnModeAndLogFile(t *testing.T) {
	pn := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	logFile := filepath.Join(t.TempDir(), "fibguard.log")
	stdin := confJSON(t, "1.0.0", map[string]any{
		"prevResult": pn.prevResult(t, "1.0.0"), "mode": "warn", "logFile": logFile, "logLevel": "debug",
	})
	p, stdout, stderr := inProcess(pn)
	if err := p.Check(cmdArgs(pn.pod.Path(), stdin)); err != nil {
		t.Fatalf("CHECK in warn mode: %v", err)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("CHECK wrote stdout %q, stderr %q; want nothing (the log goes to logFile)", stdout, stderr)
	}
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []string
	sawFG001 := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		if rec["command"] != "CHECK" || rec["containerID"] != "4f1f5c7e2a0b" {
			t.Errorf("record lacks the command's context: %s", sc.Bytes())
		}
		msg, _ := rec["msg"].(string)
		msgs = append(msgs, msg)
		if rec["code"] == "FG001" {
			sawFG001 = true
		}
	}
	if !sawFG001 || !strings.Contains(strings.Join(msgs, "\n"), "mode warn lets it pass") {
		t.Errorf("log lacks the FG001 finding or the warn decision: %q", msgs)
	}
}

// TestDelAndGCInProcess: DEL and GC succeed on any input skel lets
// through, including none.
func TestDelAndGCInProcess(t *testing.T) {
	p := New()
	for _, stdin := range [][]byte{nil, []byte(`{`), confJSON(t, "1.0.0", map[string]any{"prevResult": 1})} {
		if err := p.Del(cmdArgs("", stdin)); err != nil {
			t.Errorf("DEL %s: %v", stdin, err)
		}
		if err := p.GC(cmdArgs("", stdin)); err != nil {
			t.Errorf("GC %s: %v", stdin, err)
		}
	}
}
