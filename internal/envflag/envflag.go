// Package envflag gives fibguard's daemons flags that an environment
// variable can also set, as a DaemonSet's env entries do: the variable is
// the flag's default, a flag on the command line wins, and -help names the
// variable of every flag in brackets.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Set is a flag.FlagSet whose flags read their defaults from the
// environment. A variable that does not parse is an error of Parse.
type Set struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

// New returns a Set that reports errors (flag.ContinueOnError) and reads
// the environment with getenv.
func New(name string, getenv func(string) string) *Set {
	return &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv}
}

// String defines a string flag set by env.
func (s *Set) String(name, env, def, usage string) *string {
	if v := s.getenv(env); v != "" {
		def = v
	}
	return s.FlagSet.String(name, def, usage+" ["+env+"]")
}

// Bool defines a boolean flag set by env (strconv.ParseBool's spellings).
func (s *Set) Bool(name, env string, def bool, usage string) *bool {
	if v := s.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = b
		}
	}
	return s.FlagSet.Bool(name, def, usage+" ["+env+"]")
}

// Duration defines a duration flag set by env (time.ParseDuration's
// spellings).
func (s *Set) Duration(name, env string, def time.Duration, usage string) *time.Duration {
	if v := s.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = d
		}
	}
	return s.FlagSet.Duration(name, def, usage+" ["+env+"]")
}

// Parse reports the environment's errors, then parses args; arguments
// that are not flags are an error.
func (s *Set) Parse(args []string) error {
	if err := errors.Join(s.errs...); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	if s.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", s.Args())
	}
	return nil
}
