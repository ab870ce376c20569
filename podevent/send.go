package podevent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// once it has exited or been killed: only a process left running without
// a PID namespace could keep them open.
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
// when ctx is done Send kills the binary, so it returns right after the
// deadline whatever the binary or the API server does. The Result says,
// per Event, whether it was recorded; the error is for a binary that could
// not run, was killed, or answered nothing readable.
//
// Nothing the binary starts outlives Send: it runs as the first process
// of a PID namespace of its own, and when that process ends, by itself or
// killed, the kernel kills every other process of the namespace — a
// setsid child, a double fork, one that ignores SIGTERM or holds the
// output open — before the binary counts as exited. Where the kernel
// refuses a PID namespace (no CAP_SYS_ADMIN, namespaces disabled), the
// binary runs in a process group of its own, killed whole at the
// deadline, and what leaves the group is the caller's to end (Subreap,
// ReapOrphans).
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
	var stdout, stderr capped
	start := time.Now()
	runErr := run(ctx, bin, body, &stdout, &stderr)
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("%s killed at the deadline, after %v: %w%s",
			bin, time.Since(start).Round(time.Millisecond), ctx.Err(), stderr.tail())
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil, errors.As(runErr, &ee) && ee.ExitCode() == 1:
	case errors.Is(runErr, exec.ErrWaitDelay):
		// It exited 0, but something it left holds the output open (only
		// without a PID namespace): what it printed before is its answer.
	default:
		return Result{}, fmt.Errorf("%s: %w%s", bin, runErr, stderr.tail())
	}
	return parseResult(bin, stdout.buf.Bytes(), len(req.Events), stderr.tail())
}

// parseResult reads the event binary's stdout: a Result with one Recorded
// per Event sent, or an error naming bin and ending with tail (its last
// line of stderr).
func parseResult(bin string, out []byte, events int, tail string) (Result, error) {
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		return Result{}, fmt.Errorf("%s: unreadable result: %w%s", bin, err, tail)
	}
	if len(res.Recorded) != events {
		return Result{}, fmt.Errorf("%s: %d results for %d events%s", bin, len(res.Recorded), events, tail)
	}
	return res, nil
}

// pidNamespace is whether run starts the event binary in a PID namespace
// of its own; the tests of the fallback turn it off.
var pidNamespace = true

// run runs bin with stdin and waits for it (and, in its PID namespace,
// for everything it started) to end. At ctx's deadline it kills the
// binary's process group, which in a PID namespace ends the namespace.
func run(ctx context.Context, bin string, stdin []byte, stdout, stderr io.Writer) error {
	cmd := command(ctx, bin, stdin, stdout, stderr, pidNamespace)
	err := cmd.Start()
	if err != nil && pidNamespace && namespaceRefused(err) {
		cmd = command(ctx, bin, stdin, stdout, stderr, false)
		err = cmd.Start()
	}
	if err != nil {
		return err
	}
	return cmd.Wait()
}

// command is the exec.Cmd of one run of bin.
func command(ctx context.Context, bin string, stdin []byte, stdout, stderr io.Writer, newPIDNS bool) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A group of its own, killed whole: without a PID namespace, that
	// still ends what stays in the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if newPIDNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// namespaceRefused reports whether a failed start is the kernel refusing
// the new PID namespace rather than the binary failing to run: EPERM
// without CAP_SYS_ADMIN or under a seccomp filter, ENOSPC or EUSERS past
// user.max_pid_namespaces or the nesting limit, EINVAL without PID
// namespaces in the kernel. Retrying without one costs one more fork.
func namespaceRefused(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.ENOSPC, syscall.EUSERS, syscall.EINVAL} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
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
