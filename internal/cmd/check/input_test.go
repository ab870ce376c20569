package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibguard/fibguard/internal/hostile"
	"github.com/fibguard/fibguard/plugin"
)

// TestConflistInputs: `check` refuses, at once, with a usage error naming
// the path and what it is, every conflist path that is not a regular file
// (a FIFO must not block, /dev/zero must not be read without end) and a
// conflist past MaxConflistSize, by its size or as it is read; a link to a
// conflist is read.
func TestConflistInputs(t *testing.T) {
	p := hostile.Make(t)
	good, err := filepath.Abs(filepath.Join(examples, "healthy-bridge.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.conflist")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	// A valid conflist padded with spaces past the limit: refused for its
	// size, not for its content.
	padded := writeFile(t, "padded.conflist", `{"cniVersion": "1.0.0", "name": "x", "plugins": [`+bridgeEntry+`]}`+strings.Repeat(" ", MaxConflistSize))
	huge := filepath.Join(t.TempDir(), "huge.conflist")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 10<<30); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		class, path string
		want        []string // parts of the error; none: checked
	}{
		{"a FIFO", p.FIFO, []string{"conflist " + p.FIFO, "named pipe (FIFO), not a regular file"}},
		{"a directory", p.Dir, []string{p.Dir, "directory, not a regular file"}},
		{"an endless device", "/dev/zero", []string{"/dev/zero", "character device, not a regular file"}},
		{"a socket", p.Socket, []string{p.Socket, "socket, not a regular file"}},
		{"a dangling link", p.Dangling, []string{p.Dangling, "does not exist"}},
		{"a conflist one space past the limit", padded, []string{padded, "larger than 1048576 bytes"}},
		{"a 10 GB file", huge, []string{huge, "larger than 1048576 bytes"}},
		{"a link to a conflist", link, nil},
	} {
		t.Run(tt.class, func(t *testing.T) {
			code, err := executeBounded(t, 10*time.Second, tt.path)
			if tt.want == nil {
				if code != ExitClean {
					t.Fatalf("exit code %d (%v), want %d", code, err, ExitClean)
				}
				return
			}
			if code != ExitUsage {
				t.Fatalf("exit code %d (%v), want %d", code, err, ExitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestConflistLimitIsThePlugins: `check` reads a conflist as large as the
// plugin accepts its configuration, no larger.
func TestConflistLimitIsThePlugins(t *testing.T) {
	if MaxConflistSize != plugin.MaxConfigSize {
		t.Errorf("MaxConflistSize %d, plugin.MaxConfigSize %d", MaxConflistSize, plugin.MaxConfigSize)
	}
}

// executeBounded is execute, failing the test if it has not returned
// within limit: a refusal must come at once, and a hang must fail the test
// rather than stop it.
func executeBounded(t *testing.T, limit time.Duration, args ...string) (int, error) {
	t.Helper()
	type answer struct {
		code int
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		_, code, err := execute(t, args...)
		done <- answer{code, err}
	}()
	select {
	case a := <-done:
		return a.code, a.err
	case <-time.After(limit):
		t.Fatalf("check %v: no answer after %v: it hangs", args, limit)
		return 0, nil
	}
}
