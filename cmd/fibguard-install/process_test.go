package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"
)

// installerBinary builds this command once per test binary, so that the
// tests run the real installer as the DaemonSet does.
var installerBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fibguard-install-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fibguard-install")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := installerBinary(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin)) // a temporary directory of this run
	}
	os.Exit(code)
}

// primary is the node's primary CNI configuration in the tests.
const primary = `{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge","bridge":"cni0"}]}` + "\n"

// node is a node laid out in a temporary directory: conf and bin dirs,
// the binaries to install, and the installer's heartbeat file.
type node struct {
	root, conf, bin, heartbeat string
}

func newNode(t *testing.T) node {
	t.Helper()
	root := t.TempDir()
	n := node{root: root, conf: filepath.Join(root, "conf"), bin: filepath.Join(root, "bin"), heartbeat: filepath.Join(root, "run", "heartbeat")}
	for _, d := range []string{n.conf, n.bin, filepath.Join(root, "image"), filepath.Dir(n.heartbeat)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, body := range map[string]string{
		filepath.Join(root, "image", "fibguard"):       "plugin",
		filepath.Join(root, "image", "fibguard-event"): "event",
		filepath.Join(n.conf, "10-pods.conflist"):      primary,
	} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// args are the installer's flags for the node: no kubeconfig and no pod
// name (so it uninstalls on SIGTERM without asking an API server), a
// resync of one second.
func (n node) args(extra ...string) []string {
	return append([]string{
		"-conf-dir=" + n.conf, "-bin-dir=" + n.bin, "-binary=" + filepath.Join(n.root, "image", "fibguard"),
		"-kubeconfig-name=", "-pod-name=", "-resync=1s", "-heartbeat-file=" + n.heartbeat,
	}, extra...)
}

// installer is a running fibguard-install.
type installer struct {
	cmd    *exec.Cmd
	stderr *syncWriter
	done   chan error
}

// start runs the installer on n and waits until it is installed (its
// readiness check passes). It is killed at the end of the test if still
// running.
func start(t *testing.T, n node) *installer {
	t.Helper()
	bin, err := installerBinary()
	if err != nil {
		t.Fatalf("building fibguard-install: %v", err)
	}
	in := &installer{cmd: exec.Command(bin, n.args()...), stderr: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	in.cmd.Stderr = in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			_ = in.cmd.Process.Kill() // the test failed before it stopped
			if err := <-in.done; err == nil {
				t.Log("the installer exited on its own as it was killed")
			}
		}
	})
	waitFor(t, 20*time.Second, "the readiness check to pass", func() error { return probe(n, "-check") })
	return in
}

// probe runs the installer's -check or -live as kubelet's exec probe does.
func probe(n node, flag string) error {
	bin, err := installerBinary()
	if err != nil {
		return err
	}
	out, err := exec.Command(bin, n.args(flag)...).CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", limit, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncWriter lets the test read stderr while the child writes it.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (in *installer) log() string {
	w := in.stderr
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// holdLock takes the flock the installer takes on dir, as another
// installer would, and returns the function that releases it (also run
// at the end of the test).
func holdLock(t *testing.T, dir string) (release func()) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = d.Close() }) } // closing releases the flock
	t.Cleanup(release)
	return release
}

// gracePeriod is the DaemonSet's terminationGracePeriodSeconds: after it
// kubelet kills the installer, done or not.
func gracePeriod(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("../../manifests/base/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	g := ds.Spec.Template.Spec.TerminationGracePeriodSeconds
	if g == nil {
		return 30 * time.Second // Kubernetes' default
	}
	return time.Duration(*g) * time.Second
}

// TestSIGTERMHonoured runs the real installer, makes it block — another
// process holds the conf dir's lock, forever or for a while after the
// signal — and requires it to exit on SIGTERM well within the DaemonSet's
// grace period, with the uninstall done or reported.
func TestSIGTERMHonoured(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: fine, the test uses only its own files")
	}
	bound := gracePeriod(t) / 2
	for _, tc := range []struct {
		class string
		// holdAfter is how long the lock is still held after SIGTERM;
		// 0: forever.
		holdAfter time.Duration
		fifo      bool // a FIFO among the configuration files as well
	}{
		{class: "lock held forever"},
		{class: "lock released after the signal", holdAfter: time.Second},
		{class: "lock held forever, FIFO in the conf dir", fifo: true},
	} {
		t.Run(tc.class, func(t *testing.T) {
			n := newNode(t)
			in := start(t, n)
			release := holdLock(t, n.conf)
			if tc.fifo {
				if err := unix.Mkfifo(filepath.Join(n.conf, "00-fifo.conflist"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// A change makes the loop start a pass, which now waits on the lock.
			if err := os.WriteFile(filepath.Join(n.conf, "99-other.conf"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			sent := time.Now()
			if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if tc.holdAfter > 0 {
				time.AfterFunc(tc.holdAfter, release)
			}
			var err error
			select {
			case err = <-in.done:
			case <-time.After(bound):
				t.Fatalf("still running %v after SIGTERM (bound: half the grace period); log:\n%s", bound, in.log())
			}
			took := time.Since(sent)
			t.Logf("%s: exited %v after SIGTERM (%v), bound %v", tc.class, took.Round(time.Millisecond), err, bound)
			conf, rerr := os.ReadFile(filepath.Join(n.conf, "10-pods.conflist"))
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tc.holdAfter > 0 {
				if err != nil || string(conf) != primary {
					t.Errorf("exit %v, conflist %q: want success and the primary's bytes back; log:\n%s", err, conf, in.log())
				}
				return
			}
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || !strings.Contains(in.log(), "uninstall not complete") ||
				!strings.Contains(in.log(), "directory locked by another process") {
				t.Errorf("exit %v: want a failure that reports the uninstall not done and why; log:\n%s", err, in.log())
			}
		})
	}
}

// TestLiveProbe runs the real liveness probe against the real installer:
// it passes while the loop works, fails (naming the lock) once the loop
// has been stuck on a lock for longer than the bound, and passes again
// when the lock is released.
func TestLiveProbe(t *testing.T) {
	n := newNode(t)
	in := start(t, n)
	if err := probe(n, "-live"); err != nil {
		t.Fatalf("healthy installer: -live failed: %v", err)
	}
	release := holdLock(t, n.conf)
	stuck := time.Now()
	// The bound is 3 resync periods and 2 lock waits (9 s here); each pass
	// now waits 3 s for the lock and fails.
	waitFor(t, 20*time.Second, "-live to fail", func() error {
		if err := probe(n, "-live"); err != nil {
			if !strings.Contains(err.Error(), "directory locked by another process") {
				t.Errorf("-live failed without naming the lock: %v", err)
			}
			t.Logf("-live failed %v after the lock was taken: %v", time.Since(stuck).Round(time.Millisecond), err)
			return nil
		}
		return errors.New("still passes")
	})
	release()
	waitFor(t, 20*time.Second, "-live to pass again", func() error { return probe(n, "-live") })
	if err := probe(n, "-check"); err != nil {
		t.Errorf("after the lock was released: -check: %v", err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("stop: %v; log:\n%s", err, in.log())
		}
	case <-ctx.Done():
		t.Fatal("installer did not stop")
	}
}
