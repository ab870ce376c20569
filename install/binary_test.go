package install

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyBinary(t *testing.T) {
	for _, name := range []string{PluginType, EventBinaryName} {
		t.Run(name, func(t *testing.T) { testCopyBinary(t, name) })
	}
}

// testCopyBinary installs, updates, repairs and removes one binary.
func testCopyBinary(t *testing.T, name string) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "fibguard.src")
	dst := filepath.Join(bin, name)
	// A leftover of a killed copy, and a neighbour that must stay.
	leftover := filepath.Join(bin, "."+name+tmpMarker+"123")
	for path, body := range map[string]string{src: "v1", leftover: "half", filepath.Join(bin, "bridge"): "bridge"} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name      string
		src       string // new source content; "" keeps it
		chmod     os.FileMode
		wantWrote bool
	}{
		{name: "first copy", wantWrote: true},
		{name: "identical: left alone"},
		{name: "new version", src: "v2", wantWrote: true},
		{name: "wrong mode repaired", chmod: 0o600, wantWrote: true},
	}
	for _, s := range steps {
		if s.src != "" {
			if err := os.WriteFile(src, []byte(s.src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if s.chmod != 0 {
			if err := os.Chmod(dst, s.chmod); err != nil {
				t.Fatal(err)
			}
		}
		wrote, err := CopyBinary(src, bin, name)
		if err != nil {
			t.Fatalf("%s: CopyBinary: %v", s.name, err)
		}
		if wrote != s.wantWrote {
			t.Errorf("%s: wrote = %v, want %v", s.name, wrote, s.wantWrote)
		}
		got, err := os.ReadFile(dst)
		want, _ := os.ReadFile(src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: installed %q (%v), want %q", s.name, got, err, want)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: installed binary mode %v (%v), want 0755", s.name, fi.Mode().Perm(), err)
		}
		if ok, err := binaryInstalled(src, bin, name); err != nil || !ok {
			t.Errorf("%s: binaryInstalled = %v, %v", s.name, ok, err)
		}
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file not removed (%v)", err)
	}

	if err := RemoveBinary(bin, name); err != nil {
		t.Fatalf("RemoveBinary: %v", err)
	}
	if err := RemoveBinary(bin, name); err != nil {
		t.Fatalf("second RemoveBinary: %v", err)
	}
	if ok, err := binaryInstalled(src, bin, name); err != nil || ok {
		t.Errorf("after RemoveBinary: binaryInstalled = %v, %v", ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(bin, "bridge")); err != nil || string(b) != "bridge" {
		t.Errorf("neighbouring binary touched: %q, %v", b, err)
	}
	if _, err := CopyBinary(filepath.Join(dir, "missing"), bin, name); err == nil {
		t.Error("CopyBinary of a missing source: nil error")
	}
}
