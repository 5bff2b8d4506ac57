// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The DNS server DNS-01 challenges are answered in: BIND 9 (Debian's bind9,
// installed by `make tools`), authoritative for one test zone and taking
// RFC 2136 updates signed with one TSIG key. It runs as an unprivileged
// process on a loopback port with a configuration generated here; no system
// service is started and nothing else resolves through it.

const (
	// ACMEZone is the test zone BIND serves and every ACME certificate's
	// names live in.
	ACMEZone = "acme.test"
	// TSIGKeyName names the TSIG key allowed to update ACMEZone.
	TSIGKeyName = "keyward-acme."
	// TSIGAlgorithm is that key's algorithm, as cert-manager's rfc2136
	// solver names it.
	TSIGAlgorithm = "HMACSHA256"
)

// DNS is a running BIND 9.
type DNS struct {
	// Addr is host:port of the server, UDP and TCP.
	Addr string
	// TSIGSecret is the base64 HMAC-SHA256 secret of TSIGKeyName.
	TSIGSecret string
	// LogPath is named's own log (queries and updates included).
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
}

// namedBinary finds Debian's named.
func namedBinary() (string, error) {
	if p, err := exec.LookPath("named"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/named"); err == nil {
		return "/usr/sbin/named", nil
	}
	return "", errors.New("named (BIND 9) is not installed: run `make tools` (it installs Debian's bind9)")
}

// StartDNS starts named for ACMEZone under dir and waits until it answers
// the zone's SOA. The caller must Stop it.
func StartDNS(ctx context.Context, dir string) (*DNS, error) {
	bin, err := namedBinary()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "bind")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freeUDPTCPPort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	d := &DNS{
		Addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		TSIGSecret: base64.StdEncoding.EncodeToString(secret),
		LogPath:    filepath.Join(dir, "named.log"),
		exited:     make(chan struct{}),
	}
	if err := writeNamedConfig(dir, port, d.TSIGSecret); err != nil {
		return nil, err
	}
	args := []string{"-g", "-c", filepath.Join(dir, "named.conf")}
	// named refuses to stay root needlessly: as root it drops to Debian's
	// bind user, which must own the zone directory (updates write a journal).
	if os.Geteuid() == 0 {
		if err := chownToBind(dir); err != nil {
			return nil, err
		}
		args = append(args, "-u", "bind")
	}
	logFile, err := os.Create(d.LogPath)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting named: %w", err)
	}
	go func() { _ = d.cmd.Wait(); logFile.Close(); close(d.exited) }()
	if err := d.waitReady(ctx, 30*time.Second); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func writeNamedConfig(dir string, port int, secret string) error {
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
};
controls { };
logging {
	channel out { stderr; severity info; print-time yes; };
	category default { out; };
	category update { out; };
	category queries { null; };
};
key "%[3]s" {
	algorithm hmac-sha256;
	secret "%[4]s";
};
zone "%[5]s" {
	type primary;
	file "%[1]s/%[5]s.zone";
	allow-update { key "%[3]s"; };
};
`, dir, port, TSIGKeyName, secret, ACMEZone)
	zone := fmt.Sprintf(`$TTL 60
@	IN SOA ns1.%[1]s. hostmaster.%[1]s. ( 1 60 60 600 30 )
	IN NS ns1.%[1]s.
ns1	IN A 127.0.0.1
`, ACMEZone)
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ACMEZone+".zone"), []byte(zone), 0o644)
}

func chownToBind(dir string) error {
	u, err := user.Lookup("bind")
	if err != nil {
		return fmt.Errorf("running named as root needs Debian's bind user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}

// freeUDPTCPPort returns a loopback port free for both TCP and UDP.
func freeUDPTCPPort() (int, error) {
	for range 20 {
		port, err := FreePort()
		if err != nil {
			return 0, err
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("finding a loopback port free for TCP and UDP")
}

// waitReady polls the zone's SOA over TCP until named answers.
func (d *DNS) waitReady(ctx context.Context, limit time.Duration) error {
	return Poll(ctx, limit, "named answering for "+ACMEZone, func(ctx context.Context) (bool, error) {
		select {
		case <-d.exited:
			return false, fmt.Errorf("named exited during start-up; see %s", d.LogPath)
		default:
		}
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "tcp", d.Addr)
		}}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := r.LookupHost(qctx, "ns1."+ACMEZone)
		return err == nil, nil
	})
}

// Stop kills named and waits for it.
func (d *DNS) Stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// ChallengeRecords counts the _acme-challenge TXT records named has served
// updates for, from its log: "adding an RR" lines per RFC 2136 update.
func (d *DNS) ChallengeRecords() (added, deleted int, err error) {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "_acme-challenge.") {
			continue
		}
		switch {
		case strings.Contains(line, "adding an RR"):
			added++
		case strings.Contains(line, "deleting an RR"), strings.Contains(line, "deleting rrset"):
			deleted++
		}
	}
	return added, deleted, nil
}
