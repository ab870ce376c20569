package podevent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maxOutput bounds what Send keeps of the event binary's stdout and
// stderr; the rest is read and dropped, so the binary never blocks on a
// full pipe.
const maxOutput = 64 << 10

// waitDelay is how long Send waits for the event binary's pipes to close
// once it has been killed: only a process that escaped its process group
// could keep them open.
const waitDelay = 100 * time.Millisecond

// FindBinary returns the path of the event binary in the first of dirs
// that holds it as an executable regular file, or an error wrapping
// fs.ErrNotExist that names every directory looked in.
func FindBinary(dirs ...string) (string, error) {
	var looked []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, EventBinary)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
		looked = append(looked, d)
	}
	return "", fmt.Errorf("%s not found in %s: %w", EventBinary, strings.Join(looked, ", "), fs.ErrNotExist)
}

// Send runs the event binary bin with req on its stdin and returns the
// Result it prints. ctx must have a deadline: it becomes req.Deadline, and
// when ctx is done Send kills the binary's whole process group, so it
// returns right after the deadline whatever the binary or the API server
// does. The Result says, per Event, whether it was recorded; the error is
// for a binary that could not run, was killed, or answered nothing
// readable.
func Send(ctx context.Context, bin string, req Request) (Result, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return Result{}, errors.New("send events: the context has no deadline")
	}
	req.Version, req.Deadline = RequestVersion, deadline
	body, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("send events: encode request: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A group of its own, killed whole: a credential plugin the kubeconfig
	// names would otherwise outlive the kill and hold the pipes open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	start := time.Now()
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("%s killed at the deadline, after %v: %w%s",
			bin, time.Since(start).Round(time.Millisecond), ctx.Err(), stderr.tail())
	}
	var ee *exec.ExitError
	if runErr != nil && (!errors.As(runErr, &ee) || ee.ExitCode() != 1) {
		return Result{}, fmt.Errorf("%s: %w%s", bin, runErr, stderr.tail())
	}
	var res Result
	if err := json.Unmarshal(stdout.buf.Bytes(), &res); err != nil {
		return Result{}, fmt.Errorf("%s: unreadable result: %w%s", bin, err, stderr.tail())
	}
	if len(res.Recorded) != len(req.Events) {
		return Result{}, fmt.Errorf("%s: %d results for %d events%s", bin, len(res.Recorded), len(req.Events), stderr.tail())
	}
	return res, nil
}

// capped keeps the first maxOutput bytes written to it and drops the
// rest, reporting every write as complete.
type capped struct {
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// tail is what the binary wrote on stderr, for an error message: ": "
// and its last line, or nothing.
func (c *capped) tail() string {
	s := strings.TrimSpace(c.buf.String())
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}
