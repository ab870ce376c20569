package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// staticBinary builds a small Go program without cgo: a static ELF file.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() { println(\"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func spec(files ...File) Spec {
	return Spec{
		Ref:        "localhost/fibguard/test:dev",
		Files:      files,
		Entrypoint: []string{files[0].Path},
		Env:        []string{"PATH=/usr/local/bin"},
		Labels:     map[string]string{"org.opencontainers.image.title": "test"},
		OS:         "linux", Arch: "amd64",
		Created: time.Unix(1700000000, 0).UTC(),
	}
}

func TestBuildIsReproducibleAndChecked(t *testing.T) {
	bin := staticBinary(t)
	s := spec(File{Path: "/usr/local/bin/hello", Source: bin}, File{Path: "/opt/x/hello", Source: bin})
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	da, err := Build(s, a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Build(s, b)
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if da != db || !bytes.Equal(ba, bb) {
		t.Errorf("two builds of the same spec differ: %s and %s", da, db)
	}
	var report strings.Builder
	if err := Inspect(a, &report); err != nil {
		t.Fatalf("inspect: %v\n%s", err, report.String())
	}
	for _, want := range []string{
		"image localhost/fibguard/test:dev", "platform linux/amd64", "usr/local/bin/hello (ELF", "static)",
		"manifest.json (docker load): the same image",
	} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, report.String())
		}
	}
}

func TestInspectRefusesDynamicBinary(t *testing.T) {
	// The machine's own tools are linked against its libc.
	dynamic := "/bin/true"
	f, err := elf.Open(dynamic)
	if err != nil {
		t.Skipf("%s is not an ELF file: %v", dynamic, err)
	}
	interp := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if !interp {
		t.Skipf("%s is statically linked on this machine", dynamic)
	}
	out := filepath.Join(t.TempDir(), "img.tar")
	if _, err := Build(spec(File{Path: "/bin/true", Source: dynamic}), out); err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	if err := Inspect(out, &report); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("inspect of an image with %s: %v, want a dynamically linked error", dynamic, err)
	}
}

func TestInspectRefusesTamperedBlob(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	if _, err := Build(spec(File{Path: "/hello", Source: bin}), good); err != nil {
		t.Fatal(err)
	}
	// Flip one byte in the middle of the largest blob, the layer.
	bad := filepath.Join(dir, "bad.tar")
	if err := rewriteTar(good, bad, func(h *tar.Header, data []byte) []byte {
		if strings.HasPrefix(h.Name, "blobs/") && len(data) > 10000 {
			data[len(data)/2] ^= 0xff
		}
		return data
	}); err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	if err := Inspect(bad, &report); err == nil {
		t.Errorf("inspect of a tampered archive succeeded:\n%s", report.String())
	}
}

func rewriteTar(src, dst string, edit func(*tar.Header, []byte) []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(in), tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		data = edit(h, data)
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

func TestValidate(t *testing.T) {
	bin := staticBinary(t)
	ok := spec(File{Path: "/usr/local/bin/hello", Source: bin})
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no tag", func(s *Spec) { s.Ref = "localhost/fibguard/test" }, "-ref"},
		{"relative path", func(s *Spec) { s.Files = append(s.Files, File{Path: "opt/x", Source: bin}) }, "not a clean absolute file path"},
		{"twice", func(s *Spec) { s.Files = append(s.Files, s.Files[0]) }, "given twice"},
		{"missing source", func(s *Spec) { s.Files = append(s.Files, File{Path: "/x", Source: bin + ".missing"}) }, "source of /x"},
		{"entrypoint elsewhere", func(s *Spec) { s.Entrypoint = []string{"/bin/sh"} }, "not a file of the image"},
		{"bad env", func(s *Spec) { s.Env = []string{"PATH"} }, "want KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			s.Files = slices.Clone(ok.Files)
			tc.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error containing %q", err, tc.want)
			}
			if _, err := Build(s, filepath.Join(t.TempDir(), "x.tar")); err == nil {
				t.Error("Build accepted an invalid spec")
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("a valid spec: %v", err)
	}
}
