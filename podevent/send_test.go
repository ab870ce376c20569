package podevent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sendTimeout is the deadline the tests give Send; sendMargin bounds the
// rest (the fork and exec of a shell script, the reaping) on a loaded
// 2-core machine: the bound of a timeout path, not a measure of speed.
const (
	sendTimeout = 500 * time.Millisecond
	sendMargin  = time.Second
)

// escapes are the ways an event binary can leave processes behind, each
// a line of shell that starts some running "sleep TAG...", so that
// taggedProcesses finds them by their command line.
var escapes = []struct{ class, sh string }{
	{"a setsid child sleeping forever", `setsid sleep %s1 >/dev/null 2>&1 &`},
	{"a double fork", `( sleep %s2 >/dev/null 2>&1 & ) &`},
	{"a child ignoring SIGTERM", `sh -c 'trap "" TERM; exec sleep %s3' >/dev/null 2>&1 &`},
	{"a setsid child holding stdout open", `setsid sleep %s4 &`},
	{"a child in a PID namespace of its own", `unshare --pid --fork sleep %s5 >/dev/null 2>&1 &`},
	{"a loop starting setsid children", `sh -c 'while :; do setsid sleep %s6 >/dev/null 2>&1 & sleep 0.01; done' >/dev/null 2>&1 &`},
}

// endings are what the event binary does once it has started its
// escapes: answer at once, or hang until it is killed.
var endings = []struct{ name, sh string }{
	{"answers at once", `echo '{"recorded":[{"name":"e","count":1}]}'`},
	{"hangs past the deadline", `exec sleep %s9`},
}

var tagSeq atomic.Uint64

// newTag returns digits unique to this test run, a valid sleep duration
// (GNU sleep takes any number of seconds).
func newTag() string {
	return strconv.Itoa(os.Getpid()) + strconv.FormatUint(tagSeq.Add(1), 10) + "0"
}

// escapingBinary writes a fake event binary that reads its request,
// runs escape and then ending, with tag in their "sleep" arguments; a
// cleanup kills whatever a failed test leaves.
func escapingBinary(t *testing.T, tag, escape, ending string) string {
	t.Helper()
	script := "#!/bin/sh\ncat >/dev/null\n" + strings.ReplaceAll(escape, "%s", tag) + "\n" + strings.ReplaceAll(ending, "%s", tag) + "\n"
	path := filepath.Join(t.TempDir(), EventBinary)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTagged(t, tag) })
	return path
}

// taggedProcesses lists the live processes whose command line holds
// "sleep TAG"; a zombie has none, and is not running.
func taggedProcesses(t *testing.T, tag string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue // gone, or a zombie
		}
		if line := strings.ReplaceAll(string(cmd), "\x00", " "); strings.Contains(line, "sleep "+tag) {
			out = append(out, e.Name()+": "+line)
		}
	}
	return out
}

// killTagged ends what a failed test left.
func killTagged(t *testing.T, tag string) {
	for _, p := range taggedProcesses(t, tag) {
		pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
		_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run() // gone already is fine
	}
}

// oneEvent is a request Send accepts; the fake binaries do not read it.
var oneEvent = Request{Kubeconfig: "/k", Events: []Event{{}}}

// TestSendEndsEveryProcess: whatever an event binary starts — a setsid
// child, a double fork, a child ignoring SIGTERM or holding stdout open,
// one in a PID namespace of its own, a loop starting more — nothing of it
// runs any more when Send returns, whether the binary answers at once
// (its answer then arrives, although a child holds stdout) or hangs until
// the deadline (Send then returns within the deadline and a margin).
func TestSendEndsEveryProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the event binary gets a PID namespace of its own")
	}
	for _, esc := range escapes {
		for _, end := range endings {
			t.Run(esc.class+"/"+end.name, func(t *testing.T) {
				tag := newTag()
				bin := escapingBinary(t, tag, esc.sh, end.sh)
				ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
				defer cancel()
				start := time.Now()
				res, err := Send(ctx, bin, oneEvent)
				took := time.Since(start)
				if left := taggedProcesses(t, tag); len(left) > 0 {
					t.Errorf("still running when Send returned: %q", left)
				}
				if took > sendTimeout+sendMargin {
					t.Errorf("Send took %v with a deadline of %v", took, sendTimeout)
				}
				checkAnswer(t, end.name, res, err)
			})
		}
	}
}

// checkAnswer checks Send's answer for an ending of escapingBinary.
func checkAnswer(t *testing.T, ending string, res Result, err error) {
	t.Helper()
	switch ending {
	case "answers at once":
		if err != nil || len(res.Recorded) != 1 || res.Recorded[0].Name != "e" {
			t.Errorf("Send = %+v, %v; want the binary's answer", res, err)
		}
	default:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "killed at the deadline") {
			t.Errorf("Send: %v; want killed at the deadline", err)
		}
	}
}

// helperEnv makes the test binary run sendHelper instead of the tests:
// its value is the event binary to send to.
const helperEnv = "FIBGUARD_TEST_SEND_HELPER"

func TestMain(m *testing.M) {
	if bin := os.Getenv(helperEnv); bin != "" {
		os.Exit(sendHelper(bin))
	}
	os.Exit(m.Run())
}

// helperReport is what sendHelper prints.
type helperReport struct {
	SendErr  string        `json:"sendErr"`
	Recorded int           `json:"recorded"`
	Ended    int           `json:"ended"`
	ReapErr  string        `json:"reapErr"`
	Took     time.Duration `json:"took"`
}

// sendHelper does what the plugin does around Send, in a process of its
// own (ReapOrphans ends every child of its process): child subreaper,
// Send, ReapOrphans, and prints a helperReport.
func sendHelper(bin string) int {
	var r helperReport
	start := time.Now()
	if err := Subreap(true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	res, err := Send(ctx, bin, oneEvent)
	if err != nil {
		r.SendErr = err.Error()
	}
	r.Recorded = len(res.Recorded)
	r.Ended, err = ReapOrphans(500 * time.Millisecond)
	if err != nil {
		r.ReapErr = err.Error()
	}
	r.Took = time.Since(start)
	if err := Subreap(false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 2
	}
	return 0
}

// TestSendWithoutPIDNamespace: where the kernel refuses the event binary
// a PID namespace (here: root without CAP_SYS_ADMIN, through setpriv),
// Send still runs it, and a process that does what the plugin does — a
// child subreaper around Send, then ReapOrphans — leaves nothing running
// either, within the deadline and a margin; an answer the binary printed
// before exiting arrives although a child holds stdout open.
func TestSendWithoutPIDNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it drops CAP_SYS_ADMIN to make the kernel refuse a PID namespace")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not found: cannot drop CAP_SYS_ADMIN")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, esc := range escapes {
		if strings.Contains(esc.sh, "unshare") {
			continue // a PID namespace is what the helper cannot make
		}
		for _, end := range endings {
			t.Run(esc.class+"/"+end.name, func(t *testing.T) {
				tag := newTag()
				bin := escapingBinary(t, tag, esc.sh, end.sh)
				cmd := exec.Command(setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--", self, "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"="+bin)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("helper: %v: %s", err, stderr.String())
				}
				var r helperReport
				if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
					t.Fatalf("helper printed %q: %v", stdout.String(), err)
				}
				if left := taggedProcesses(t, tag); len(left) > 0 {
					t.Errorf("still running after ReapOrphans: %q (%+v)", left, r)
				}
				checkHelper(t, end.name, r)
			})
		}
	}
}

// checkHelper checks a helperReport for an ending of escapingBinary.
func checkHelper(t *testing.T, ending string, r helperReport) {
	t.Helper()
	if r.ReapErr != "" {
		t.Errorf("ReapOrphans: %s", r.ReapErr)
	}
	if r.Took > sendTimeout+sendMargin {
		t.Errorf("Send and ReapOrphans took %v with a deadline of %v", r.Took, sendTimeout)
	}
	switch ending {
	case "answers at once":
		if r.SendErr != "" || r.Recorded != 1 {
			t.Errorf("Send: %d recorded, error %q; want the binary's answer", r.Recorded, r.SendErr)
		}
		// Without a namespace, what the binary started outlives it and
		// comes to the subreaper: this is the fallback at work.
		if r.Ended == 0 {
			t.Errorf("ReapOrphans ended nothing: did the binary get a PID namespace after all? %+v", r)
		}
	default:
		if !strings.Contains(r.SendErr, "killed at the deadline") {
			t.Errorf("Send: %q; want killed at the deadline", r.SendErr)
		}
	}
}

// FuzzParseResult: whatever the event binary prints, the plugin's reading
// of it never panics; it refuses with an error that names the binary and
// ends with its last line of stderr, or accepts exactly one outcome per
// Event sent, which reads back the same once encoded again.
func FuzzParseResult(f *testing.F) {
	f.Add([]byte(`{"recorded":[{"name":"web-0.fibguard.1","count":2}],"warnings":["w"]}`), uint8(1))
	f.Add([]byte(`{"recorded":[{"error":"forbidden"},{"name":"x","count":1}]}`), uint8(2))
	f.Add([]byte(`{"recorded":[]}`), uint8(1))
	f.Add([]byte(`{]`), uint8(1))
	f.Add([]byte(``), uint8(0))
	const bin, tail = "/opt/cni/bin/fibguard-event", ": last line"
	f.Fuzz(func(t *testing.T, out []byte, events uint8) {
		res, err := parseResult(bin, out, int(events), tail)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, bin+": ") || !strings.HasSuffix(msg, tail) {
				t.Fatalf("refused %q with %q: want it to name %s and end with stderr", out, msg, bin)
			}
			return
		}
		if len(res.Recorded) != int(events) {
			t.Fatalf("accepted %d outcomes for %d events: %q", len(res.Recorded), events, out)
		}
		enc, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseResult(bin, enc, int(events), tail)
		if err != nil {
			t.Fatalf("accepted %q, but not its own encoding %s: %v", out, enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the result:\n%s\n%s", enc, enc2)
		}
	})
}
