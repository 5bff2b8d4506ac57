// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
)

// SecretPattern is a kind of secret that must never reach a log, an Event
// or a status message.
type SecretPattern struct {
	Name string
	re   *regexp.Regexp
}

// rootTokenPattern names the pattern of the Vault root token.
const rootTokenPattern = "the Vault root token"

// SecretPatterns are the secrets any component could leak: private keys,
// Vault tokens (the root token and service tokens) and Kubernetes
// ServiceAccount tokens (JWTs, as Keyward requests for its Vault logins).
func SecretPatterns(rootToken string) []SecretPattern {
	ps := []SecretPattern{
		{"a PEM private key", regexp.MustCompile(`PRIVATE KEY-----`)},
		{"a Vault service token", regexp.MustCompile(`hvs\.[A-Za-z0-9_-]{20,}`)},
		{"a Kubernetes ServiceAccount token", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`)},
	}
	if rootToken != "" {
		ps = append(ps, SecretPattern{rootTokenPattern, regexp.MustCompile(regexp.QuoteMeta(rootToken))})
	}
	return ps
}

// ScanText returns one line per line of text that matches a pattern, naming
// where, the line number and the pattern, never the match itself.
func ScanText(where string, text []byte, patterns []SecretPattern) ([]string, error) {
	var hits []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		for _, p := range patterns {
			if p.re.Match(sc.Bytes()) {
				hits = append(hits, fmt.Sprintf("%s:%d holds %s", where, n, p.Name))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return hits, fmt.Errorf("scanning %s: %w", where, err)
	}
	return hits, nil
}

// LeakReport is what LeakScan looked at and found.
type LeakReport struct {
	LogFiles, Events, Certificates, CertificateRequests int
	// Hits name each leak (where, line, kind), never the secret.
	Hits []string
}

// LeakScan searches every log file of the stack (*.log under Dir), every
// Event message and every Certificate and CertificateRequest condition
// message for private keys and tokens. Vault's own console log is not
// searched for the root token: `vault server -dev` prints it by design.
func (e *Env) LeakScan(ctx context.Context) (LeakReport, error) {
	var r LeakReport
	patterns := SecretPatterns(e.Vault.RootToken)
	withoutRoot := slices.DeleteFunc(slices.Clone(patterns), func(p SecretPattern) bool { return p.Name == rootTokenPattern })
	add := func(where string, text []byte, ps []SecretPattern) error {
		hits, err := ScanText(where, text, ps)
		r.Hits = append(r.Hits, hits...)
		return err
	}
	err := filepath.WalkDir(e.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.Dir, p)
		ps := patterns
		if p == e.Vault.LogPath {
			ps = withoutRoot
		}
		r.LogFiles++
		return add(rel, b, ps)
	})
	if err != nil {
		return r, fmt.Errorf("scanning logs in %s: %w", e.Dir, err)
	}
	var events corev1.EventList
	if err := e.Client.List(ctx, &events); err != nil {
		return r, fmt.Errorf("listing events: %w", err)
	}
	for _, ev := range events.Items {
		if err := add(fmt.Sprintf("Event %s/%s message", ev.Namespace, ev.Name), []byte(ev.Message), patterns); err != nil {
			return r, err
		}
	}
	r.Events = len(events.Items)
	var crts cmapi.CertificateList
	if err := e.Client.List(ctx, &crts); err != nil {
		return r, fmt.Errorf("listing certificates: %w", err)
	}
	for _, c := range crts.Items {
		for _, cond := range c.Status.Conditions {
			if err := add(fmt.Sprintf("Certificate %s/%s condition %s", c.Namespace, c.Name, cond.Type), []byte(cond.Message), patterns); err != nil {
				return r, err
			}
		}
	}
	r.Certificates = len(crts.Items)
	var crs cmapi.CertificateRequestList
	if err := e.Client.List(ctx, &crs); err != nil {
		return r, fmt.Errorf("listing certificaterequests: %w", err)
	}
	for _, c := range crs.Items {
		for _, cond := range c.Status.Conditions {
			if err := add(fmt.Sprintf("CertificateRequest %s/%s condition %s", c.Namespace, c.Name, cond.Type), []byte(cond.Message), patterns); err != nil {
				return r, err
			}
		}
	}
	r.CertificateRequests = len(crs.Items)
	return r, nil
}
