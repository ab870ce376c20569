// Package fuzzrun tests hack/fuzz.sh, which `make fuzz` runs: it must run
// every Fuzz target however the others end, fail on a real failure, and
// not fail on the Go fuzz coordinator's deadline race.
package fuzzrun

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// outcomes are canned `go test -fuzz` endings, by target name: what the
// fake go prints and its exit status.
var outcomes = map[string]struct {
	out  string
	exit int
}{
	"FuzzPass": {"fuzz: elapsed: 1s, execs: 20000 (20000/sec), new interesting: 3 (total: 9)\nPASS\nok  \texample.com/m/a\t1.1s\n", 0},
	// A crash found while fuzzing: the input is saved.
	"FuzzCrash": {"--- FAIL: FuzzCrash (0.20s)\n    --- FAIL: FuzzCrash (0.00s)\n        a_test.go:9: boom\n    \n    Failing input written to testdata/fuzz/FuzzCrash/3ac9\n    To re-run:\n    go test -run=FuzzCrash/3ac9\nFAIL\nexit status 1\nFAIL\texample.com/m/a\t0.3s\n", 1},
	// The coordinator's race at the end of a timed run: nothing saved.
	"FuzzRace": {"fuzz: elapsed: 10s, execs: 91234 (9000/sec), new interesting: 2 (total: 40)\n--- FAIL: FuzzRace (10.02s)\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\texample.com/m/b\t10.1s\n", 1},
	// A seed that fails with the same words is a real failure.
	"FuzzSeed":  {"--- FAIL: FuzzSeed (0.00s)\n    --- FAIL: FuzzSeed/seed#0 (0.00s)\n        context deadline exceeded\nFAIL\nexit status 1\nFAIL\texample.com/m/b\t0.1s\n", 1},
	"FuzzBuild": {"# example.com/m/b\nb/b.go:3:1: syntax error: non-declaration statement outside function body\nFAIL\texample.com/m/b [build failed]\n", 1},
}

// fakeGo is a `go` that records its arguments and ends as outcomes says
// for the target named by -fuzz=^Name$.
const fakeGo = `#!/bin/sh
echo "$*" >>"$FAKEGO_LOG"
for a in "$@"; do
	case "$a" in -fuzz=*) name=${a#-fuzz=^}; name=${name%$} ;; esac
done
cat "$FAKEGO_DIR/$name.out"
exit $(cat "$FAKEGO_DIR/$name.exit")
`

// module writes a module whose tests declare the targets, two per file,
// with a decoy in testdata that must not run, and the fake go.
func module(t *testing.T, targets ...string) (root, goBin, log string) {
	t.Helper()
	root, fake := t.TempDir(), t.TempDir()
	for i := 0; i < len(targets); i += 2 {
		var src strings.Builder
		src.WriteString("package p\n\nimport \"testing\"\n")
		for _, name := range targets[i:min(i+2, len(targets))] {
			src.WriteString("\nfunc " + name + "(f *testing.F) {}\n")
			o := outcomes[name]
			write(t, filepath.Join(fake, name+".out"), o.out)
			write(t, filepath.Join(fake, name+".exit"), string(rune('0'+o.exit)))
		}
		write(t, filepath.Join(root, "p"+string(rune('a'+i/2)), "x_test.go"), src.String())
	}
	write(t, filepath.Join(root, "pa", "testdata", "decoy_test.go"), "package p\n\nfunc FuzzDecoy(f *testing.F) {}\n")
	goBin = filepath.Join(fake, "go")
	if err := os.WriteFile(goBin, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKEGO_DIR", fake)
	log = filepath.Join(fake, "calls")
	t.Setenv("FAKEGO_LOG", log)
	return root, goBin, log
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzScript runs hack/fuzz.sh over fake modules and a fake go: every
// target runs, in order, with the count and the minimisation bound, even
// after a failure; a crash, a failing seed or a build failure fails the
// run and is named; the deadline race alone does not fail it.
func TestFuzzScript(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "hack", "fuzz.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		class   string
		targets []string
		fail    bool
		summary string
		named   []string // in the failed list
	}{
		{"all pass", []string{"FuzzPass"}, false, "1 targets for 10s each: 1 passed, 0 flaked, 0 failed", nil},
		{"the deadline race alone", []string{"FuzzPass", "FuzzRace"}, false, "2 targets for 10s each: 1 passed, 1 flaked, 0 failed", nil},
		{"a crash among others", []string{"FuzzCrash", "FuzzPass", "FuzzRace"}, true, "3 targets for 10s each: 1 passed, 1 flaked, 1 failed", []string{"./pa FuzzCrash"}},
		{"a failing seed and a build failure", []string{"FuzzSeed", "FuzzBuild", "FuzzPass"}, true, "3 targets for 10s each: 1 passed, 0 flaked, 2 failed", []string{"./pa FuzzSeed", "./pa FuzzBuild"}},
	} {
		t.Run(tt.class, func(t *testing.T) {
			root, goBin, log := module(t, tt.targets...)
			cmd := exec.Command(script)
			cmd.Env = append(os.Environ(), "GO="+goBin, "FUZZROOT="+root, "FUZZTIME=10s")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			failed := errors.As(err, &ee) && ee.ExitCode() == 1
			switch {
			case tt.fail && !failed:
				t.Errorf("exit: %v, want 1\n%s", err, out)
			case !tt.fail && err != nil:
				t.Errorf("exit: %v, want 0\n%s", err, out)
			}
			if !strings.Contains(string(out), "fuzz: "+tt.summary) {
				t.Errorf("no summary %q in:\n%s", tt.summary, out)
			}
			for _, n := range tt.named {
				if !strings.Contains(string(out), "fuzz: failed: "+n) {
					t.Errorf("%s not named as failed in:\n%s", n, out)
				}
			}
			checkCalls(t, log, tt.targets)
		})
	}
}

// checkCalls checks that the fake go ran each target once, in order, with
// the count and the minimisation bound, and never the decoy.
func checkCalls(t *testing.T, log string, targets []string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	var ran []string
	for _, c := range calls {
		if !strings.Contains(c, "-fuzztime=10s") || !strings.Contains(c, "-fuzzminimizetime=500x") || !strings.Contains(c, "-run=^$") {
			t.Errorf("go called with %q", c)
		}
		for _, f := range strings.Fields(c) {
			if name, ok := strings.CutPrefix(f, "-fuzz=^"); ok {
				ran = append(ran, strings.TrimSuffix(name, "$"))
			}
		}
	}
	if !slices.Equal(ran, targets) {
		t.Errorf("ran %q, want %q", ran, targets)
	}
}
