package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of the image in index.json. containerd names an imported
// image after the first; the OCI one holds the tag, as `docker save` and
// `podman save` write it.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Spec is the image to build.
type Spec struct {
	// Ref names the image, with its tag (default "latest").
	Ref string
	// Files are copied into the image, each with mode 0755, owned by root.
	Files []File
	// Entrypoint is the command the image runs; its first element must be
	// one of Files.
	Entrypoint []string
	// Env is the environment of that command, KEY=VALUE.
	Env []string
	// Labels are the image's labels (org.opencontainers.image.*).
	Labels map[string]string
	// OS, Arch and Variant are the platform the binaries were built for.
	OS, Arch, Variant string
	// Created is the time the config, the history and every file in the
	// layer carry: fixed, so that a rebuild gives the same digest.
	Created time.Time
}

// File is a file of the image: Path inside it, Source on this machine.
type File struct {
	Path, Source string
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	*m = append(*m, s)
	return nil
}

// parseBuild reads the build command's flags into a valid Spec and the
// output path.
func parseBuild(args []string) (Spec, string, error) {
	fs := flag.NewFlagSet("imagebuild build", flag.ContinueOnError)
	out := fs.String("out", "", "the archive to write (required)")
	ref := fs.String("ref", "", "the image's name and tag, e.g. ghcr.io/fibguard/fibguard:v0.1.0 (required)")
	var adds, envs, labels multiFlag
	fs.Var(&adds, "add", "/PATH/IN/IMAGE=FILE: copy FILE into the image (repeat)")
	fs.Var(&envs, "env", "KEY=VALUE in the image's environment (repeat; default PATH=/usr/local/bin)")
	fs.Var(&labels, "label", "KEY=VALUE image label (repeat)")
	entrypoint := fs.String("entrypoint", "", "the command the image runs, a path given with -add (required)")
	goos := fs.String("os", "linux", "the binaries' GOOS")
	arch := fs.String("arch", runtime.GOARCH, "the binaries' GOARCH")
	variant := fs.String("variant", "", "the platform variant (arm64: v8; arm: v6, v7)")
	epoch := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "creation time in Unix seconds [SOURCE_DATE_EPOCH]; default 0")
	if err := fs.Parse(args); err != nil {
		return Spec{}, "", err
	}
	if fs.NArg() > 0 {
		return Spec{}, "", fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var errs []error
	if *out == "" {
		errs = append(errs, errors.New("-out: not set"))
	}
	spec := Spec{Ref: *ref, OS: *goos, Arch: *arch, Variant: *variant, Env: envs, Labels: map[string]string{}}
	if *entrypoint != "" {
		spec.Entrypoint = []string{*entrypoint}
	}
	if len(spec.Env) == 0 {
		spec.Env = []string{"PATH=/usr/local/bin"}
	}
	for _, a := range adds {
		dst, src, ok := strings.Cut(a, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("-add %q: want /PATH/IN/IMAGE=FILE", a))
			continue
		}
		spec.Files = append(spec.Files, File{Path: dst, Source: src})
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("-label %q: want KEY=VALUE", l))
			continue
		}
		spec.Labels[k] = v
	}
	secs := int64(0)
	if *epoch != "" {
		var err error
		if secs, err = strconv.ParseInt(*epoch, 10, 64); err != nil || secs < 0 {
			errs = append(errs, fmt.Errorf("-created %q: want Unix seconds", *epoch))
		}
	}
	spec.Created = time.Unix(secs, 0).UTC()
	if err := spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	return spec, *out, errors.Join(errs...)
}

// Validate reports every problem of s at once.
func (s Spec) Validate() error {
	var errs []error
	if _, err := name.NewTag(s.Ref, name.StrictValidation); err != nil {
		errs = append(errs, fmt.Errorf("-ref %q: want REGISTRY/REPOSITORY:TAG: %w", s.Ref, err))
	}
	if len(s.Files) == 0 {
		errs = append(errs, errors.New("no files: give at least one -add"))
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		switch {
		case !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/":
			errs = append(errs, fmt.Errorf("image path %q: not a clean absolute file path", f.Path))
		case seen[f.Path]:
			errs = append(errs, fmt.Errorf("image path %q: given twice", f.Path))
		}
		seen[f.Path] = true
		if fi, err := os.Stat(f.Source); err != nil {
			errs = append(errs, fmt.Errorf("source of %s: %w", f.Path, err))
		} else if !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("source of %s: %s is not a regular file", f.Path, f.Source))
		}
	}
	if len(s.Entrypoint) == 0 {
		errs = append(errs, errors.New("-entrypoint: not set"))
	} else if !seen[s.Entrypoint[0]] {
		errs = append(errs, fmt.Errorf("-entrypoint %q: not a file of the image (-add it)", s.Entrypoint[0]))
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("-env %q: want KEY=VALUE", e))
		}
	}
	if s.OS == "" || s.Arch == "" {
		errs = append(errs, errors.New("-os and -arch: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid image: %w", err)
	}
	return nil
}

// Build assembles the image of spec and writes its archive to out (through
// a temporary file and a rename). It returns the image's manifest digest.
func Build(spec Spec, out string) (v1.Hash, error) {
	if err := spec.Validate(); err != nil {
		return v1.Hash{}, err
	}
	img, err := image(spec)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing the image digest: %w", err)
	}
	files, err := archiveFiles(spec, img)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeTar(out, files); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// image builds the image: the config, then one layer with the files.
func image(spec Spec) (v1.Image, error) {
	files, err := layerFiles(spec)
	if err != nil {
		return nil, err
	}
	layerTar, err := tarBytes(files)
	if err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("creating the layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	base, err = mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: spec.Arch,
		OS:           spec.OS,
		Variant:      spec.Variant,
		Created:      v1.Time{Time: spec.Created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: spec.Entrypoint,
			Env:        spec.Env,
			Labels:     spec.Labels,
			User:       "0:0",
			WorkingDir: "/",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: spec.Created},
			CreatedBy: "hack/build-image.sh",
			Comment:   "fibguard binaries",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	return img, nil
}

// layerFiles returns the files of the layer: spec's files (0755) and their
// parent directories (0755), all dated spec.Created. Written with
// tar.Writer.AddFS, they come in path order, a directory before what it
// holds, owned by uid and gid 0.
func layerFiles(spec Spec) (fstest.MapFS, error) {
	files := fstest.MapFS{}
	for _, f := range spec.Files {
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
		}
		files[f.Path[1:]] = &fstest.MapFile{Data: data, Mode: 0o755, ModTime: spec.Created}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			files[d[1:]] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: spec.Created}
		}
	}
	return files, nil
}

// tarBytes returns the tar archive of files.
func tarBytes(files fs.FS) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(files); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// archiveFiles returns the files of the archive: img as an OCI image
// layout, with the annotations that name it, and Docker's manifest.json
// beside it pointing at the same blobs; files 0644, directories 0755, all
// dated spec.Created.
func archiveFiles(spec Spec, img v1.Image) (files fstest.MapFS, err error) {
	tag, err := name.NewTag(spec.Ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image name: %w", err)
	}
	full := canonical(tag)
	// go-containerregistry writes layouts only to directories: write one
	// and read it back.
	dir, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, fmt.Errorf("creating a work directory: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("removing the work directory: %w", rmErr)
		}
	}()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("writing the image layout: %w", err)
	}
	platform := v1.Platform{OS: spec.OS, Architecture: spec.Arch, Variant: spec.Variant}
	if err := p.AppendImage(img,
		layout.WithPlatform(platform),
		layout.WithAnnotations(map[string]string{
			annotationContainerdName: full,
			annotationRefName:        tag.TagStr(),
		})); err != nil {
		return nil, fmt.Errorf("writing the image layout: %w", err)
	}
	files = fstest.MapFS{}
	err = fs.WalkDir(os.DirFS(dir), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == "." {
			return err
		}
		f := &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: spec.Created}
		if !d.IsDir() {
			f.Mode = 0o644
			f.Data, err = os.ReadFile(filepath.Join(dir, name))
		}
		files[name] = f
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the image layout: %w", err)
	}
	m, err := dockerManifest(img, full)
	if err != nil {
		return nil, err
	}
	files["manifest.json"] = &fstest.MapFile{Data: m, Mode: 0o644, ModTime: spec.Created}
	return files, nil
}

// dockerManifest returns the manifest.json of `docker save` for img, named
// full, pointing at the blobs of the OCI layout.
func dockerManifest(img v1.Image, full string) ([]byte, error) {
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("reading the config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers: %w", err)
	}
	m := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blobPath(cfg), RepoTags: []string{full}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("reading a layer digest: %w", err)
		}
		m.Layers = append(m.Layers, blobPath(d))
	}
	data, err := json.Marshal([]any{m})
	if err != nil {
		return nil, fmt.Errorf("encoding manifest.json: %w", err)
	}
	return data, nil
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

// canonical returns the name a container runtime gives the image:
// containerd and kubelet spell Docker Hub docker.io, where
// go-containerregistry says index.docker.io.
func canonical(tag name.Tag) string {
	reg := tag.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + tag.RepositoryStr() + ":" + tag.TagStr()
}

// writeTar writes the tar archive of files to out through a temporary file
// and a rename: an interrupted build leaves no half-written archive.
func writeTar(out string, files fs.FS) (err error) {
	data, err := tarBytes(files)
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", out, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}
