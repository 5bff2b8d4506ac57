// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// File names the files sink writes, the same as a kubernetes.io/tls Secret's keys.
const (
	FileCert = "tls.crt"
	FileKey  = "tls.key"
	FileCA   = "ca.crt"
	// dataLink is the symlink that points at the current version's
	// directory; the visible files are symlinks through it, so one rename
	// switches certificate and key together.
	dataLink = "..data"
)

// FilesOptions configure NewFiles.
type FilesOptions struct {
	// Dir receives <Dir>/<namespace>/<name>/{tls.crt,tls.key,ca.crt}.
	Dir string
	// AllowNonTmpfs lets Dir be on a disk-backed filesystem. Off, NewFiles
	// refuses anything but tmpfs or ramfs, so keys never reach a disk.
	AllowNonTmpfs bool
	// ReloadPidfile, if set, names a pidfile whose process gets
	// ReloadSignal after each delivery (nginx: its pid file and SIGHUP).
	// No pidfile, or one naming no process, means the server is not
	// running yet: nothing to reload, it reads the files when it starts.
	ReloadPidfile string
	// ReloadSignal; default SIGHUP.
	ReloadSignal syscall.Signal
	// ReloadURL, if set, gets an HTTP POST after each delivery; any 2xx is success.
	ReloadURL string
	// ReloadTimeout bounds the HTTP reload; default 10s.
	ReloadTimeout time.Duration
}

// Files is a Sink writing PEM files for programs that read certificates
// from disk, such as nginx. Each version is written to its own directory
// (files 0600, directory 0700) and switched in with an atomic rename of a
// symlink, then the reload action runs. A failed reload is retried on the
// next Deliver of the same version.
type Files struct {
	o      FilesOptions
	client *http.Client
	// reloaded holds the revision last reloaded per Secret.
	reloaded map[string]string
}

var _ Sink = (*Files)(nil)

// ErrNotTmpfs is returned by NewFiles for a directory on a disk-backed filesystem.
var ErrNotTmpfs = errors.New("directory is not on tmpfs")

// NewFiles checks o and returns the sink.
func NewFiles(o FilesOptions) (*Files, error) {
	if o.Dir == "" {
		return nil, errors.New("files sink: a directory is required")
	}
	if o.ReloadPidfile != "" && o.ReloadURL != "" {
		return nil, errors.New("files sink: set a reload pidfile or a reload URL, not both")
	}
	if o.ReloadSignal == 0 {
		o.ReloadSignal = syscall.SIGHUP
	}
	if o.ReloadTimeout <= 0 {
		o.ReloadTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("files sink: %w", err)
	}
	if !o.AllowNonTmpfs {
		mem, fs, err := onMemoryFS(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("files sink: checking the filesystem of %s: %w", o.Dir, err)
		}
		if !mem {
			return nil, fmt.Errorf("files sink: %s is on %s, not tmpfs: keys would be written to disk (mount a memory-backed emptyDir there, or pass --files-allow-non-tmpfs): %w", o.Dir, fs, ErrNotTmpfs)
		}
	}
	return &Files{o: o, client: &http.Client{Timeout: o.ReloadTimeout}, reloaded: map[string]string{}}, nil
}

// Name implements Sink.
func (f *Files) Name() string { return "files" }

// Dir returns the directory holding the files of Secret namespace/name.
func (f *Files) Dir(namespace, name string) string { return filepath.Join(f.o.Dir, namespace, name) }

// Deliver implements Sink.
func (f *Files) Deliver(ctx context.Context, b *Bundle) error {
	if _, err := b.X509KeyPair(); err != nil {
		return errors.Join(ErrPermanent, err)
	}
	dir := f.Dir(b.Namespace, b.Name)
	rev := fmt.Sprintf("..v%d_%s_", b.Version, b.Serial)
	if !strings.HasPrefix(f.current(dir), rev) {
		if err := f.write(dir, b); err != nil {
			return err
		}
	}
	if f.reloaded[b.ID()] == rev {
		return nil
	}
	if err := f.reload(ctx); err != nil {
		return fmt.Errorf("files written to %s, reload failed: %w", dir, err)
	}
	f.reloaded[b.ID()] = rev
	return nil
}

// current returns the name of the version directory dir serves, or "".
func (f *Files) current(dir string) string {
	target, _ := os.Readlink(filepath.Join(dir, dataLink))
	return target
}

func (f *Files) write(dir string, b *Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// "..v<version>_<serial>_<nanos>": a fresh directory even if a version is re-written.
	name := fmt.Sprintf("..v%d_%s_%d", b.Version, b.Serial, time.Now().UnixNano())
	tmp := filepath.Join(dir, name)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	for file, data := range map[string][]byte{FileCert: b.Certificate, FileKey: b.Key, FileCA: b.CA} {
		if err := writeSynced(filepath.Join(tmp, file), data); err != nil {
			_ = os.RemoveAll(tmp)
			return fmt.Errorf("writing %s for %s: %w", file, b, err)
		}
	}
	link := filepath.Join(dir, ".."+"data_tmp")
	_ = os.Remove(link)
	if err := os.Symlink(name, link); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(link, filepath.Join(dir, dataLink)); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	for _, file := range []string{FileCert, FileKey, FileCA} {
		p := filepath.Join(dir, file)
		if t, err := os.Readlink(p); err == nil && t == filepath.Join(dataLink, file) {
			continue
		}
		_ = os.Remove(p)
		if err := os.Symlink(filepath.Join(dataLink, file), p); err != nil {
			return err
		}
	}
	// Old versions go once the new one is in place.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..v") && e.Name() != name {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

func writeSynced(p string, data []byte) error {
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if serr := fh.Sync(); err == nil {
		err = serr
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *Files) reload(ctx context.Context) error {
	switch {
	case f.o.ReloadPidfile != "":
		raw, err := os.ReadFile(f.o.ReloadPidfile)
		if errors.Is(err, fs.ErrNotExist) {
			// The server has not started yet (a sidecar's first delivery
			// usually comes first): it reads the files when it starts.
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading pidfile: %w", err)
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil || pid < 2 {
			return fmt.Errorf("pidfile %s does not hold a process id", f.o.ReloadPidfile)
		}
		if err := syscall.Kill(pid, f.o.ReloadSignal); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil // stale pidfile: not running, it reads the files when it starts
			}
			return fmt.Errorf("signalling process %d from %s: %w", pid, f.o.ReloadPidfile, err)
		}
	case f.o.ReloadURL != "":
		ctx, cancel := context.WithTimeout(ctx, f.o.ReloadTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.o.ReloadURL, nil)
		if err != nil {
			return err
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("reload URL answered %s", resp.Status)
		}
	}
	return nil
}
