package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/fibguard/fibguard/checker"
)

// TestAddHealthyBridge runs the binary inside the host namespace on a
// healthy bridge pod, in every supported cniVersion: it must exit 0 and
// print the prevResult unchanged; CHECK must pass too.
func TestAddHealthyBridge(t *testing.T) {
	pn := newBridgePodNet(t, "10.22.0.1/24", "10.22.0.2/24")
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			prev := pn.prevResult(t, v)
			stdin := confJSON(t, v, map[string]any{"prevResult": prev})
			o := invocation{env: cniEnv("ADD", pn.pod.Path()), stdin: stdin, in: pn.host}.run(t)
			if o.exit != 0 {
				t.Fatalf("ADD: exit %d\nstdout: %s\nstderr: %s", o.exit, o.stdout, o.stderr)
			}
			same, err := sameJSON(o.stdout, prev)
			if err != nil || !same {
				t.Errorf("ADD result is not the prevResult (%v)\ngot:  %s\nwant: %s", err, o.stdout, prev)
			}
			if v < "0.4.0" {
				return
			}
			o = invocation{env: cniEnv("CHECK", pn.pod.Path()), stdin: stdin, in: pn.host}.run(t)
			if o.exit != 0 || len(o.stdout) != 0 {
				t.Errorf("CHECK: exit %d\nstdout: %s\nstderr: %s", o.exit, o.stdout, o.stderr)
			}
		})
	}
}

// TestAddLoopbackBridge: the seed's case, a bridge on 127.16.0.0/16. In
// enforce mode ADD and CHECK fail with CodeRejected naming FG001 and list
// the findings in details; in warn mode ADD passes the prevResult on.
func TestAddLoopbackBridge(t *testing.T) {
	pn := newBridgePodNet(t, "127.16.0.1/16", "127.16.0.2/16")
	prev := pn.prevResult(t, "1.0.0")

	for _, cmd := range []string{"ADD", "CHECK"} {
		t.Run("enforce "+cmd, func(t *testing.T) {
			stdin := confJSON(t, "1.0.0", map[string]any{"prevResult": prev})
			o := invocation{env: cniEnv(cmd, pn.pod.Path()), stdin: stdin, in: pn.host}.run(t)
			if o.exit == 0 {
				t.Fatalf("exit 0, want a rejection\nstdout: %s", o.stdout)
			}
			e := cniError(t, o)
			if e.Code != CodeRejected {
				t.Errorf("code: got %d, want %d (%s)", e.Code, CodeRejected, e.Msg)
			}
			if !strings.HasPrefix(e.Msg, "fibguard: FG001 ") || !strings.Contains(e.Msg, "127.16.0.2") {
				t.Errorf("msg %q does not name FG001 and the pod IP", e.Msg)
			}
			var details struct {
				Findings []checker.Finding `json:"findings"`
			}
			if err := json.Unmarshal([]byte(e.Details), &details); err != nil {
				t.Fatalf("details are not findings JSON: %v\n%s", err, e.Details)
			}
			if len(details.Findings) == 0 || details.Findings[0].Code != checker.CodeHostLoopback {
				t.Errorf("details: got %+v, want FG001 first", details.Findings)
			}
			for _, f := range details.Findings {
				if f.Message == "" || f.Fix == "" {
					t.Errorf("finding without message or fix: %+v", f)
				}
			}
		})
	}

	t.Run("warn", func(t *testing.T) {
		stdin := confJSON(t, "1.0.0", map[string]any{"prevResult": prev, "mode": "warn"})
		o := invocation{env: cniEnv("ADD", pn.pod.Path()), stdin: stdin, in: pn.host}.run(t)
		if o.exit != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", o.exit, o.stdout, o.stderr)
		}
		if same, err := sameJSON(o.stdout, prev); err != nil || !same {
			t.Errorf("result is not the prevResult (%v)\ngot:  %s\nwant: %s", err, o.stdout, prev)
		}
		// Without logFile the findings are reported on stderr.
		if !strings.Contains(string(o.stderr), `"code":"FG001"`) {
			t.Errorf("stderr does not report FG001:\n%s", o.stderr)
		}
	})

	// With FG001 off the pod is still rejected (its address and gateway
	// are loopback addresses), but not for FG001.
	t.Run("FG001 off", func(t *testing.T) {
		stdin := confJSON(t, "1.0.0", map[string]any{"prevResult": prev, "checks": map[string]string{"FG001": "off"}})
		o := invocation{env: cniEnv("ADD", pn.pod.Path()), stdin: stdin, in: pn.host}.run(t)
		e := cniError(t, o)
		if o.exit == 0 || e.Code != CodeRejected {
			t.Fatalf("exit %d, error %+v; want a rejection", o.exit, e)
		}
		if strings.Contains(e.Msg, "FG001") || strings.Contains(e.Details, `"FG001"`) {
			t.Errorf("FG001 is off, but reported: %s\n%s", e.Msg, e.Details)
		}
	})
}

// TestAddNetnsGone: CNI_NETNS that does not exist is the runtime's
// mistake, reported with the spec's code, not as an internal error.
func TestAddNetnsGone(t *testing.T) {
	pn := newBridgePodNet(t, "10.22.0.1/24", "10.22.0.2/24")
	stdin := confJSON(t, "1.0.0", map[string]any{"prevResult": pn.prevResult(t, "1.0.0"), "failurePolicy": "Ignore"})
	o := invocation{env: cniEnv("ADD", pn.pod.Path()+"-gone"), stdin: stdin, in: pn.host}.run(t)
	if e := cniError(t, o); o.exit == 0 || e.Code != types.ErrInvalidEnvironmentVariables {
		t.Errorf("exit %d, error %+v; want code %d", o.exit, e, types.ErrInvalidEnvironmentVariables)
	}
}
