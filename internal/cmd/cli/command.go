package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Group returns a command that only holds subcommands: without one it
// prints its help (exit 0); with an unknown one it is a usage error that
// names it and suggests the nearest, as the root command does — cobra
// alone prints the help and exits 0 for `fibguardctl route gte`.
func Group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args[0])
		},
	}
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default for the root
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %q?", s[0])
	}
	var subs []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && c.Name() != "completion" {
			subs = append(subs, c.Name())
		}
	}
	if len(subs) > 0 {
		msg += " (commands: " + strings.Join(subs, ", ") + ")"
	}
	return errors.New(msg)
}

// Args checks that a command has exactly the named positional arguments
// ("DST", "CONFLIST") and says which is missing or extra.
func Args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		want := strings.Join(names, " ")
		switch {
		case len(args) < len(names):
			return fmt.Errorf("%s needs %s: usage %s", cmd.CommandPath(), strings.Join(names[len(args):], " "), cmd.UseLine())
		case len(args) > len(names) && len(names) == 0:
			return fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
		case len(args) > len(names):
			return fmt.Errorf("%s takes %s only, got also %q", cmd.CommandPath(), want, args[len(names):])
		}
		return nil
	}
}

// FlagError rewrites pflag's errors for a value that does not parse
// (`invalid argument "x" for "--mark" flag: strconv.ParseUint: ...`) as
// the flag, the bad value and what was expected; it is the root command's
// SetFlagErrorFunc.
func FlagError(_ *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err
	}
	fl := iv.GetFlag()
	return Reword(err, "--%s %q: want %s", fl.Name, iv.GetValue(), expected(fl.Value.Type()))
}

// expected says in words what a flag of a pflag type takes.
func expected(typ string) string {
	switch typ {
	case "bool":
		return "true or false"
	case "uint8":
		return "a number from 0 to 255 (0x prefix for hexadecimal)"
	case "uint32":
		return "a number from 0 to 4294967295 (0x prefix for hexadecimal)"
	}
	return "a value of type " + typ
}
