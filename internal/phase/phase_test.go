package phase

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reset gives the package the state of a process started with the
// variable set to p.
func reset(t *testing.T, p string) {
	t.Helper()
	path, marks, spent = p, nil, nil
	t.Cleanup(func() { path, marks, spent = "", nil, nil })
}

// TestFlushAppendsOneLinePerRun: the marks in order, with rising times,
// and the pieces' totals, one JSON line per run appended to the file.
func TestFlushAppendsOneLinePerRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "phases.jsonl")
	for run := range 2 {
		reset(t, file)
		End("start")
		Add("queries", time.Millisecond)
		Add("queries", 2*time.Millisecond)
		End("work")
		Flush()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != run+1 {
			t.Fatalf("after run %d: %d lines, want %d", run+1, len(lines), run+1)
		}
		var rec struct {
			Marks []Mark                   `json:"marks"`
			Spent map[string]time.Duration `json:"spent"`
		}
		if err := json.Unmarshal([]byte(lines[run]), &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Marks) != 2 || rec.Marks[0].Name != "start" || rec.Marks[1].Name != "work" || rec.Marks[1].At < rec.Marks[0].At {
			t.Errorf("marks %+v, want start then work", rec.Marks)
		}
		if rec.Spent["queries"] != 3*time.Millisecond {
			t.Errorf("spent %v, want queries 3ms", rec.Spent)
		}
	}
}

// TestDisabled: without the variable nothing is recorded or written.
func TestDisabled(t *testing.T) {
	reset(t, "")
	End("start")
	Add("queries", time.Millisecond)
	Flush()
	if Enabled() || len(marks) != 0 || len(spent) != 0 {
		t.Errorf("disabled, yet marks %v, spent %v", marks, spent)
	}
}

// TestBounded: marks past maxMarks are dropped, not grown.
func TestBounded(t *testing.T) {
	reset(t, filepath.Join(t.TempDir(), "phases.jsonl"))
	for range 2 * maxMarks {
		End("x")
	}
	if len(marks) != maxMarks {
		t.Errorf("%d marks, want at most %d", len(marks), maxMarks)
	}
}
