// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Revision is one stored version of an etcd key.
type Revision struct {
	Key      string
	Revision int64
	Value    []byte
	Deleted  bool
}

// EtcdHistory returns every retained revision of every key under prefix
// (e.g. "/registry/secrets/team-a/"), oldest first, read straight from etcd:
// what is at rest, not what the apiserver shows. The stack's etcd never
// compacts by itself, so this is the whole history (after a test compacts
// it, the history it kept). With Options.KMS, values the
// apiserver encrypted are decrypted here with its own transformer, so a scan
// sees what each revision holds (custody's guarantee must hold without
// encryption at rest too); EtcdHistoryRaw shows the ciphertext.
func (e *Env) EtcdHistory(ctx context.Context, prefix string) ([]Revision, error) {
	revs, err := e.EtcdHistoryRaw(ctx, prefix)
	if err != nil || e.codec == nil {
		return revs, err
	}
	for i := range revs {
		if revs[i].Deleted {
			continue
		}
		if revs[i].Value, err = e.codec.decode(ctx, revs[i].Key, revs[i].Value); err != nil {
			return nil, fmt.Errorf("etcd revision %d: %w", revs[i].Revision, err)
		}
	}
	return revs, nil
}

// EtcdHistoryRaw is EtcdHistory without decryption: the bytes etcd holds.
func (e *Env) EtcdHistoryRaw(ctx context.Context, prefix string) ([]Revision, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.EtcdEndpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %s: %w", e.EtcdEndpoint, err)
	}
	defer cli.Close()
	cur, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("reading etcd revision: %w", err)
	}
	head := cur.Header.Revision
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				_ = cli.RequestProgress(wctx)
			}
		}
	}()
	// A test may have compacted etcd: etcd then cancels a watch from
	// revision 1 and names its oldest revision, to replay from instead.
	out, compacted, err := replay(wctx, cli, prefix, 1, head)
	if compacted != 0 {
		out, _, err = replay(wctx, cli, prefix, compacted, head)
	}
	return out, err
}

// replay watches prefix from revision from until etcd reports progress at
// or past head. The replay is complete then: etcd only sends a progress
// notification to a watcher that has caught up (EtcdHistoryRaw keeps asking
// for one). A watch cancelled by compaction returns etcd's oldest revision.
func replay(ctx context.Context, cli *clientv3.Client, prefix string, from, head int64) ([]Revision, int64, error) {
	var out []Revision
	for resp := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify()) {
		if resp.CompactRevision > from {
			return nil, resp.CompactRevision, nil
		}
		if err := resp.Err(); err != nil {
			return nil, 0, fmt.Errorf("reading etcd history of %s: %w", prefix, err)
		}
		for _, ev := range resp.Events {
			out = append(out, Revision{
				Key:      string(ev.Kv.Key),
				Revision: ev.Kv.ModRevision,
				Value:    append([]byte(nil), ev.Kv.Value...),
				Deleted:  ev.Type == clientv3.EventTypeDelete,
			})
		}
		if resp.IsProgressNotify() && resp.Header.Revision >= head {
			return out, 0, nil
		}
	}
	return nil, 0, fmt.Errorf("reading etcd history of %s: no complete replay within 30s: %w", prefix, ctx.Err())
}

// pemPrivateKeyMarkers are what a PEM private key looks like at rest (etcd
// stores Secrets as protobuf, with data values as raw bytes, so PEM text is
// visible as is).
var pemPrivateKeyMarkers = [][]byte{
	[]byte("PRIVATE KEY-----"),
}

// HoldsPEMPrivateKey reports whether b contains a PEM private key header.
func HoldsPEMPrivateKey(b []byte) bool {
	for _, m := range pemPrivateKeyMarkers {
		if bytes.Contains(b, m) {
			return true
		}
	}
	return false
}

// SecretNameFromKey turns "/registry/secrets/<ns>/<name>" into "<ns>/<name>".
func SecretNameFromKey(key string) string {
	return strings.TrimPrefix(key, "/registry/secrets/")
}

// EtcdFileScan is what a byte scan of etcd's data directory found.
type EtcdFileScan struct {
	Files int
	Bytes int64
	// Hits names the files holding a PEM private key header.
	Hits []string
}

// ScanEtcdFiles reads every file of etcd's data directory (the bbolt
// database member/snap/db, the write-ahead log member/wal/*.wal, snapshots)
// and reports those holding a PEM private key: what a stolen disk or backup
// would show, free pages and not yet compacted history included.
func (e *Env) ScanEtcdFiles() (EtcdFileScan, error) {
	var s EtcdFileScan
	err := e.walkEtcdFiles(func(rel string, b []byte) {
		s.Files++
		s.Bytes += int64(len(b))
		if HoldsPEMPrivateKey(b) {
			s.Hits = append(s.Hits, rel)
		}
	})
	return s, err
}

// walkEtcdFiles calls f with every file of etcd's data directory (its path
// relative to the directory, and its bytes).
func (e *Env) walkEtcdFiles(f func(rel string, b []byte)) error {
	dir := e.kube.ControlPlane.Etcd.DataDir
	if dir == "" {
		return errors.New("etcd's data directory is unknown")
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f(strings.TrimPrefix(p, dir+"/"), b)
		return nil
	})
}

// PurgeEtcdHistory does what an operator does to drop superseded revisions
// from etcd's disk: compact the keyspace up to the current revision (with
// WithCompactPhysical, so the call returns once the compaction is applied
// to the backend) and defragment the member, which rewrites its database
// file with live data only. It returns the compaction revision. The
// write-ahead log is not rewritten: etcd drops WAL files only after a
// snapshot (--snapshot-count) and beyond --max-wals.
func (e *Env) PurgeEtcdHistory(ctx context.Context) (int64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.EtcdEndpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("connecting to etcd %s: %w", e.EtcdEndpoint, err)
	}
	defer cli.Close()
	cur, err := cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("reading etcd revision: %w", err)
	}
	rev := cur.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return 0, fmt.Errorf("compacting etcd at revision %d: %w", rev, err)
	}
	if _, err := cli.Defragment(ctx, e.EtcdEndpoint); err != nil {
		return 0, fmt.Errorf("defragmenting etcd: %w", err)
	}
	return rev, nil
}

// FindInEtcdFiles reports, for each named byte string, the files of etcd's
// data directory that contain it (paths relative to the directory).
func (e *Env) FindInEtcdFiles(needles map[string][]byte) (map[string][]string, error) {
	found := map[string][]string{}
	err := e.walkEtcdFiles(func(rel string, b []byte) {
		for name, n := range needles {
			if bytes.Contains(b, n) {
				found[name] = append(found[name], rel)
			}
		}
	})
	return found, err
}
