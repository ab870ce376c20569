// Package cli holds what fibguardctl's commands share so that they behave
// alike and like the tools beside them (ip, kubectl): exit codes, the
// -o text|json|yaml output, command groups that refuse unknown
// subcommands, and messages in fibguardctl's own words — the bad value and
// what was expected — instead of the Go parser's.
package cli

import (
	"errors"
	"fmt"
	"strings"
)

// Exit codes of fibguardctl.
const (
	// ExitOK: the answer is a route, or the conflist would be accepted.
	ExitOK = 0
	// ExitAnswer: the answer is an error (the kernel would refuse the
	// lookup), the model and the kernel disagree, or the checks fail.
	ExitAnswer = 1
	// ExitUsage: the command line or an input is wrong; nothing was
	// answered.
	ExitUsage = 2
)

// ExitError is an error that sets the exit code of the process; Code maps
// it, every other error is a usage or input error (ExitUsage).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// Failed marks err as an answer that is a failure (ExitAnswer): the
// output was written, and err says in one line why the exit code is 1.
func Failed(err error) error { return &ExitError{Code: ExitAnswer, Err: err} }

// Code is the exit code for an error a command returned: ExitOK for nil,
// the code of an ExitError, ExitUsage otherwise.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitUsage
}

// Untab replaces tab characters with single spaces: iproute2 prints a
// rule with a tab after its priority, and no output of fibguardctl holds
// one.
func Untab(s string) string { return strings.ReplaceAll(s, "\t", " ") }

// Message is the line fibguardctl prints for a failed command, without
// tabs or line breaks.
func Message(err error) string {
	return strings.Join(strings.Fields(Untab(err.Error())), " ")
}

// inputError is an error whose message is written in fibguardctl's words
// while it still wraps the cause for errors.Is and errors.As.
type inputError struct {
	msg string
	err error
}

func (e *inputError) Error() string { return e.msg }

func (e *inputError) Unwrap() error { return e.err }

// Reword returns an error that reads msg and wraps err.
func Reword(err error, format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...), err: err}
}
