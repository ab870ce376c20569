package fib

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// SnapshotVersion is the version of the snapshot format that Encode writes
// and Decode reads. docs/snapshot-format.md describes it.
const SnapshotVersion = "fibguard.snapshot/v1"

// snapshot is the file format: a version line and the model, with each
// route as one line of text (Route.MarshalText). The routes are decoded as
// strings first and parsed into a slice of the right size, so a snapshot
// of a million routes never grows a slice of Route values.
type snapshot struct {
	Version string `json:"version"`
	*Model
	Routes []string `json:"routes"`
}

// Encode writes the model as a snapshot.
func (m *Model) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", " ")
	s := snapshot{Version: SnapshotVersion, Model: m, Routes: make([]string, len(m.Routes))}
	for i := range m.Routes {
		text, err := m.Routes[i].MarshalText()
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		s.Routes[i] = string(text)
	}
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// Decode reads a snapshot written by Encode. Unknown fields, another
// version, and any inconsistency that Validate finds are errors.
func Decode(r io.Reader) (*Model, error) {
	s := snapshot{Model: &Model{}}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("decode snapshot: version %q, want %q", s.Version, SnapshotVersion)
	}
	s.Model.Routes = make([]Route, len(s.Routes))
	w := make(words)
	for i, line := range s.Routes {
		if err := s.Model.Routes[i].parse(line, w); err != nil {
			return nil, fmt.Errorf("decode snapshot: route %d %q: %w", i, line, err)
		}
		s.Routes[i] = ""
	}
	if err := s.Model.Validate(); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return s.Model, nil
}
