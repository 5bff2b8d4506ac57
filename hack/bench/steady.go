// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/keyward-io/keyward/e2e/framework"
)

// steadyResult is what happened during the quiet period after issuance.
type steadyResult struct {
	Quiet time.Duration
	// Vault requests in the audit log during the quiet period, by who made
	// them, from the token's display name: "keyward" (Kubernetes auth as the
	// keyward ServiceAccount, any of its roles), "cert-manager" (as the
	// cert-manager ServiceAccount), "unauthenticated" (logins: the role name is
	// HMAC'd in the audit log, so they are not attributed), "other" (tokens
	// created by the harness).
	Vault map[string]int
	// VaultPaths lists the Keyward requests by operation and path.
	VaultPaths map[string]int
	// Writes counts watch events (resourceVersion changes) in the issuance
	// namespaces, keyed "<kind> <custody|baseline> <field manager>".
	Writes map[string]int
	// CustodyWrites and BaselineWrites total Writes per namespace kind.
	CustodyWrites, BaselineWrites int
}

type auditEntry struct {
	Type string `json:"type"`
	Auth struct {
		DisplayName string   `json:"display_name"`
		Policies    []string `json:"policies"`
	} `json:"auth"`
	Request struct {
		Path      string `json:"path"`
		Operation string `json:"operation"`
	} `json:"request"`
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("reading vault audit log: %w", err)
	}
	return fi.Size(), nil
}

// countVault classifies the audit log's request entries written after offset.
func countVault(path string, offset int64, res *steadyResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading vault audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != "request" {
			continue
		}
		who := "other"
		switch dn := e.Auth.DisplayName; {
		case strings.HasPrefix(dn, keywardDisplayName):
			who = "keyward"
			res.VaultPaths[e.Request.Operation+" "+custodyPathPattern(e.Request.Path)+" ("+strings.Join(e.Auth.Policies, ",")+")"]++
		case strings.HasPrefix(dn, certManagerDisplayName):
			who = "cert-manager"
		case dn == "":
			who = "unauthenticated"
		}
		res.Vault[who]++
	}
	return sc.Err()
}

// Vault names Kubernetes-auth tokens "<mount>-<namespace>-<serviceaccount>".
const (
	keywardDisplayName     = framework.VaultKubernetesMount + "-" + framework.KeywardNamespace + "-" + framework.KeywardServiceAccount
	certManagerDisplayName = framework.VaultKubernetesMount + "-" + framework.CertManagerNamespace + "-" + framework.CertManagerServiceAccount
)

// lastManager names the field manager with the newest managedFields entry:
// who made the latest write.
func lastManager(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return "?"
	}
	best, bestT := "?", time.Time{}
	for _, mf := range acc.GetManagedFields() {
		if mf.Time != nil && !mf.Time.Time.Before(bestT) {
			best, bestT = mf.Manager, mf.Time.Time
		}
	}
	return best
}

// runSteady watches Secrets, Certificates and CertificateRequests cluster-wide
// and tails Vault's audit log for the quiet period.
func (b *bench) runSteady(ctx context.Context) (*steadyResult, error) {
	res := &steadyResult{Quiet: b.opts.Quiet, Vault: map[string]int{}, VaultPaths: map[string]int{}}
	wc, err := b.countWrites(ctx, func(ns string) (string, bool) {
		arm, ok := b.issuanceNamespaces[ns]
		if arm == "b" {
			return "custody", ok
		}
		return "baseline", ok
	})
	if err != nil {
		return nil, err
	}
	finished := false
	defer func() {
		if !finished {
			wc.finish()
		}
	}()
	offset, err := fileSize(b.st.Vault.AuditLogPath)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(b.opts.Quiet):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Read the audit log first: it is the end of the quiet period.
	if err := countVault(b.st.Vault.AuditLogPath, offset, res); err != nil {
		return nil, err
	}
	var total map[string]int
	res.Writes, total = wc.finish()
	finished = true
	res.CustodyWrites, res.BaselineWrites = total["custody"], total["baseline"]
	return res, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// custodyPathPattern folds a custody record's path
// (<mount>/<data|metadata>/<prefix>/<namespace>/<secret>) into
// <mount>/<data|metadata>/<prefix>/<namespace>/*, so that one request per
// record reads as one line per namespace.
func custodyPathPattern(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) == 5 && (parts[1] == "data" || parts[1] == "metadata") {
		parts[4] = "*"
		return strings.Join(parts, "/")
	}
	return p
}
