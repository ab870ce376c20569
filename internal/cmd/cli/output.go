package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Format is an output format of -o.
type Format string

// The output formats: text for people, json and yaml for programs, as
// kubectl's -o.
const (
	Text Format = "text"
	JSON Format = "json"
	YAML Format = "yaml"
)

// AddOutput registers -o/--output on a command, default text.
func AddOutput(cmd *cobra.Command, f *string) {
	cmd.Flags().StringVarP(f, "output", "o", string(Text), "output format: text, json or yaml")
}

// ParseFormat reads the value of -o.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, JSON, YAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: want text, json or yaml", s)
}

// Encode writes v as JSON (indented) or YAML; the YAML is the JSON's,
// with the same keys (sigs.k8s.io/yaml).
func Encode(w io.Writer, f Format, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", f, err)
	}
	if f == YAML {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("encode %s: %w", f, err)
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}
