// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The ACME server: Let's Encrypt's test CA, pebble (bin/pebble, built by
// `make tools` from github.com/letsencrypt/pebble/v2). It validates DNS-01
// challenges for real, resolving through the stack's BIND; its
// "always valid" shortcut (PEBBLE_VA_ALWAYS_VALID) is never set. Its random
// nonce rejections and validation sleeps are off and valid authorizations
// are always reused, so a run is repeatable.

const (
	// ACMEProfileDefault is pebble's default profile here: 90-day
	// certificates, like Let's Encrypt's.
	ACMEProfileDefault = "default"
	// ACMEProfileShortLived issues certificates valid for
	// PebbleOptions.ShortLived, so renewals come every few seconds.
	ACMEProfileShortLived = "shortlived"
)

// PebbleOptions configure StartPebble.
type PebbleOptions struct {
	// Dir receives pebble's config, TLS files and log.
	Dir string
	// DNS is the resolver pebble validates DNS-01 challenges through.
	DNS string
	// ShortLived is the validity of ACMEProfileShortLived certificates.
	// Default 45 s.
	ShortLived time.Duration
}

// Pebble is a running pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// Management is the base URL of pebble's management interface (roots,
	// intermediates).
	Management string
	// TLSCAPEM is the CA of pebble's own HTTPS listeners (the ACME issuer's
	// caBundle); it is not the CA that signs issued certificates.
	TLSCAPEM []byte
	// LogPath is pebble's log: every account, order and issuance.
	LogPath string

	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	logFile *os.File
}

// StartPebble starts bin/pebble on loopback ports and waits for its
// directory. The caller must Stop it.
func StartPebble(ctx context.Context, opts PebbleOptions) (*Pebble, error) {
	bin, err := binary("pebble")
	if err != nil {
		return nil, err
	}
	if opts.ShortLived == 0 {
		opts.ShortLived = 45 * time.Second
	}
	dir := filepath.Join(opts.Dir, "pebble")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	caPEM, err := writeServingPair(dir)
	if err != nil {
		return nil, fmt.Errorf("pebble TLS: %w", err)
	}
	var ports [4]int
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	p := &Pebble{
		Directory:  fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		Management: fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		TLSCAPEM:   caPEM,
		LogPath:    filepath.Join(dir, "pebble.log"),
		exited:     make(chan struct{}),
	}
	cfg := pebbleConfig(dir, ports, opts.ShortLived)
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "pebble-config.json"), b, 0o644); err != nil {
		return nil, err
	}
	if p.logFile, err = os.Create(p.LogPath); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, "-config", filepath.Join(dir, "pebble-config.json"), "-dnsserver", opts.DNS)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	// Valid authorizations are reused for every later order of the same
	// account and name, as Let's Encrypt does within its reuse window
	// (pebble's default is a coin toss): a name pays cert-manager's fixed
	// 60 s DNS-01 propagation wait once, renewals do not.
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_AUTHZREUSE=100")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("starting pebble: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := Poll(ctx, 30*time.Second, "pebble directory", func(ctx context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("pebble exited during start-up; see %s", p.LogPath)
		default:
		}
		_, err := p.get(ctx, p.Directory)
		return err == nil, nil
	}); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func pebbleConfig(dir string, ports [4]int, shortLived time.Duration) map[string]any {
	return map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":             filepath.Join(dir, "tls.crt"),
		"privateKey":              filepath.Join(dir, "tls.key"),
		// HTTP-01 and TLS-ALPN-01 validation ports: unused (DNS-01 only),
		// but pebble needs them set.
		"httpPort":   ports[2],
		"tlsPort":    ports[3],
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			ACMEProfileDefault:    map[string]any{"description": "90-day certificates", "validityPeriod": 90 * 24 * 3600},
			ACMEProfileShortLived: map[string]any{"description": "short-lived certificates for renewal tests", "validityPeriod": int(shortLived.Seconds())},
		},
	}}
}

// writeServingPair writes a throwaway CA and a 127.0.0.1/localhost serving
// certificate signed by it for pebble's listeners, and returns the CA's PEM.
func writeServingPair(dir string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble listener test CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return caPEM, os.WriteFile(filepath.Join(dir, "ca.crt"), caPEM, 0o644)
}

// client trusts only pebble's listener CA.
func (p *Pebble) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.TLSCAPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// RootPEM is the root every certificate pebble issues chains to (from the
// management interface; pebble generates it at start).
func (p *Pebble) RootPEM(ctx context.Context) ([]byte, error) {
	return p.get(ctx, p.Management+"/roots/0")
}

var (
	pebbleOrderLine   = regexp.MustCompile(`Added order "([^"]+)" to the db`)
	pebbleIssuedLine  = regexp.MustCompile(`Issued certificate serial ([0-9a-f]+) for order (\S+)`)
	pebbleAccountLine = regexp.MustCompile(`There are now (\d+) accounts in memory`)
)

// PebbleLedger is what pebble's log says it did: every order created (in
// order), the certificate serial issued for each finalised order, and the
// accounts registered.
type PebbleLedger struct {
	Orders   []string
	Issued   map[string]string // order ID -> certificate serial (hex)
	Accounts int
}

// Ledger reads pebble's log. It counts at the ACME server itself: an order
// cert-manager lost track of would still be here.
func (p *Pebble) Ledger() (PebbleLedger, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.logFile.Sync()
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return PebbleLedger{}, err
	}
	l := PebbleLedger{Issued: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		if m := pebbleOrderLine.FindStringSubmatch(line); m != nil {
			l.Orders = append(l.Orders, m[1])
		} else if m := pebbleIssuedLine.FindStringSubmatch(line); m != nil {
			l.Issued[m[2]] = m[1]
		} else if m := pebbleAccountLine.FindStringSubmatch(line); m != nil {
			l.Accounts, _ = strconv.Atoi(m[1])
		}
	}
	return l, nil
}

// Stop kills pebble and waits for it.
func (p *Pebble) Stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = p.logFile.Close()
}

// ErrNoACME is returned by ACME helpers on a stack started without Options.ACME.
var ErrNoACME = errors.New("the stack was started without Options.ACME")
