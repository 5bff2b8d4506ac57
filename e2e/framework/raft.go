// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// RaftOptions configure StartVaultRaft.
type RaftOptions struct {
	// Dir receives each node's data directory, configuration and log, the
	// audit logs and the shipped audit log. Required.
	Dir string
	// Nodes is the number of Vault servers; default 3.
	Nodes int
	// KeyShares and KeyThreshold are the Shamir split of the root key at
	// initialisation; default 3 shares, 2 to unseal.
	KeyShares, KeyThreshold int
	// AllowedDomains for the PKI roles, as VaultOptions.AllowedDomains.
	AllowedDomains []string
	// Unconfigured initialises and unseals the cluster but configures
	// nothing: a cluster a snapshot is about to be restored into.
	Unconfigured bool
	// Front, when set, is the client address of a destroyed cluster this one
	// replaces (as a load balancer or the vault-active Service outlives the
	// pods behind it); default a new front. The cluster does not close a
	// front it was given.
	Front *VaultFront
	// Shipper, when set, is the audit log shipper of a destroyed cluster
	// this one replaces (a restored snapshot names its address in the
	// socket audit device); default a new one, not closed if given.
	Shipper *AuditShipper
}

// RaftCluster is a Vault cluster on integrated storage (Raft): Nodes servers
// on loopback, initialised with Shamir keys the test holds, each unsealed,
// and configured as StartVault configures a dev server. Clients reach it
// through Front, a loopback TCP front that forwards every connection to the
// active node (what a load balancer checking /v1/sys/health, or the
// vault-active Service of the Vault Helm chart, does in production).
//
// TLS is off on the API listeners (loopback only); Raft's own cluster port
// is always mutual TLS with certificates Vault generates.
type RaftCluster struct {
	// Vault is the cluster as a client sees it: Addr is Front's address
	// (node-0's while an Unconfigured cluster awaits its snapshot),
	// RootToken the initial root token (the snapshot's after
	// SnapshotRestore). It can be given to Options.SharedVault. It has no
	// process of its own: use the cluster's Stop, KillNode and StopNode, not
	// its Stop, Pause or Resume.
	Vault *Vault
	// Nodes are the servers, node-0 first.
	Nodes []*RaftNode
	// UnsealKeys are the base64 Shamir shares; Threshold of them unseal a node.
	UnsealKeys []string
	Threshold  int
	// Front forwards clients to the active node.
	Front *VaultFront
	// Shipper receives the second (socket) audit device's stream and appends
	// it to ShippedAuditLogPath, standing in for a log shipper.
	Shipper *AuditShipper
	// ShippedAuditLogPath is the file the shipper appends to.
	ShippedAuditLogPath string

	dir        string
	ownFront   bool
	ownShipper bool
}

// RaftNode is one Vault server of a RaftCluster.
type RaftNode struct {
	// ID is the Raft node ID (node-<i>).
	ID string
	// Addr is the node's own API address, http://127.0.0.1:<port>.
	Addr string
	// LogPath is the server's log, appended to across restarts.
	LogPath string
	// DataDir is the node's Raft data directory.
	DataDir string

	hostPort    string
	clusterPort int
	configPath  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
}

// StartVaultRaft starts, initialises, unseals and (unless Unconfigured)
// configures a Raft cluster. The caller must Stop it.
func StartVaultRaft(ctx context.Context, opts RaftOptions) (_ *RaftCluster, err error) {
	if opts.Dir == "" {
		return nil, errors.New("starting vault raft cluster: RaftOptions.Dir is required")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.KeyShares == 0 {
		opts.KeyShares, opts.KeyThreshold = 3, 2
	}
	if len(opts.AllowedDomains) == 0 {
		opts.AllowedDomains = []string{"example.com", "localhost"}
	}
	r := &RaftCluster{dir: opts.Dir, Threshold: opts.KeyThreshold, Front: opts.Front, Shipper: opts.Shipper}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()
	if r.Front == nil {
		if r.Front, err = NewVaultFront(); err != nil {
			return r, err
		}
		r.ownFront = true
	}
	r.ShippedAuditLogPath = filepath.Join(opts.Dir, "vault-audit-shipped.log")
	if r.Shipper == nil {
		if r.Shipper, err = NewAuditShipper(r.ShippedAuditLogPath); err != nil {
			return r, err
		}
		r.ownShipper = true
	} else {
		r.ShippedAuditLogPath = r.Shipper.Path
	}
	if err := r.createNodes(opts.Nodes); err != nil {
		return r, err
	}
	for _, n := range r.Nodes {
		if err := n.start(); err != nil {
			return r, err
		}
	}
	if err := r.initialise(ctx, opts.KeyShares, opts.KeyThreshold); err != nil {
		return r, err
	}
	if err := r.WaitHealthy(ctx, opts.Nodes, time.Minute); err != nil {
		return r, err
	}
	if opts.Unconfigured {
		// Not behind the front until a snapshot is restored: clients of the
		// cluster it replaces must not meet an empty Vault.
		return r, nil
	}
	if err := r.attach(ctx); err != nil {
		return r, err
	}
	if err := r.Vault.configure(ctx, VaultOptions{Dir: opts.Dir, AllowedDomains: opts.AllowedDomains}); err != nil {
		return r, fmt.Errorf("configuring vault raft cluster: %w", err)
	}
	return r, r.enableShippedAudit(ctx)
}

// RaftForTest starts a configured three-node cluster under dir and stops it
// at cleanup.
func RaftForTest(t testing.TB, dir string) *RaftCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := StartVaultRaft(ctx, RaftOptions{Dir: dir})
	if err != nil {
		t.Fatalf("starting vault raft cluster: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

func (r *RaftCluster) createNodes(n int) error {
	for i := 0; i < n; i++ {
		api, err := FreePort()
		if err != nil {
			return err
		}
		cluster, err := FreePort()
		if err != nil {
			return err
		}
		dir := filepath.Join(r.dir, fmt.Sprintf("vault-node-%d", i))
		node := &RaftNode{
			ID:          fmt.Sprintf("node-%d", i),
			Addr:        fmt.Sprintf("http://127.0.0.1:%d", api),
			hostPort:    fmt.Sprintf("127.0.0.1:%d", api),
			LogPath:     filepath.Join(r.dir, fmt.Sprintf("vault-node-%d.log", i)),
			DataDir:     filepath.Join(dir, "data"),
			configPath:  filepath.Join(dir, "vault.hcl"),
			clusterPort: cluster,
		}
		if err := os.MkdirAll(node.DataDir, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", node.DataDir, err)
		}
		r.Nodes = append(r.Nodes, node)
	}
	for _, node := range r.Nodes {
		if err := os.WriteFile(node.configPath, []byte(r.nodeConfig(node)), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", node.configPath, err)
		}
	}
	return nil
}

// attach puts the nodes behind the front and sends the cluster's clients
// there.
func (r *RaftCluster) attach(ctx context.Context) error {
	r.Front.SetBackends(r.nodeHostPorts())
	r.Vault.Addr = r.Front.Addr
	return r.Front.WaitActive(ctx, time.Minute)
}

// nodeConfig is a production-style server configuration, but on loopback
// without TLS on the API listener. performance_multiplier 1 is what
// HashiCorp recommends for production: Raft's heartbeat and election
// timeouts of about a second (the default, 5, multiplies them for slow
// development machines).
func (r *RaftCluster) nodeConfig(node *RaftNode) string {
	var joins strings.Builder
	for _, peer := range r.Nodes {
		if peer != node {
			fmt.Fprintf(&joins, "  retry_join {\n    leader_api_addr = %q\n  }\n", peer.Addr)
		}
	}
	return fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = %q
  performance_multiplier = 1
%s}

listener "tcp" {
  address         = %q
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}

api_addr      = %q
cluster_addr  = "https://127.0.0.1:%d"
disable_mlock = true
ui            = false
log_level     = "info"
`, node.DataDir, node.ID, joins.String(), node.hostPort, node.clusterPort, node.Addr, node.clusterPort)
}

func (r *RaftCluster) nodeHostPorts() []string {
	out := make([]string, len(r.Nodes))
	for i, n := range r.Nodes {
		out[i] = n.hostPort
	}
	return out
}

// initialise runs `vault operator init` on node-0, unseals it, lets the
// others join (retry_join) and unseals them.
func (r *RaftCluster) initialise(ctx context.Context, shares, threshold int) error {
	c, err := r.nodeClient(0, "")
	if err != nil {
		return err
	}
	if err := Poll(ctx, 30*time.Second, "vault node-0 listening", func(ctx context.Context) (bool, error) {
		_, err := c.Sys().SealStatusWithContext(ctx)
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("%w; see %s", err, r.Nodes[0].LogPath)
	}
	init, err := c.Sys().InitWithContext(ctx, &vaultapi.InitRequest{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		return fmt.Errorf("initialising vault raft cluster: %w", err)
	}
	r.UnsealKeys = init.KeysB64
	// Until attach, the cluster's clients talk to node-0, which is active
	// once unsealed: the first node of a new cluster leads.
	r.Vault = &Vault{
		Addr:         r.Nodes[0].Addr,
		RootToken:    init.RootToken,
		AuditLogPath: filepath.Join(r.dir, "vault-audit.log"),
		LogPath:      r.Nodes[0].LogPath,
	}
	if err := r.unseal(ctx, 0); err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Second}
	if err := Poll(ctx, time.Minute, "vault node-0 active", func(context.Context) (bool, error) {
		return healthStatus(hc, r.Nodes[0].hostPort) == http.StatusOK, nil
	}); err != nil {
		return fmt.Errorf("%w; see %s", err, r.Nodes[0].LogPath)
	}
	// Promote joined nodes to voters quickly (autopilot's default waits 10 s).
	root, err := r.nodeClient(0, init.RootToken)
	if err != nil {
		return err
	}
	if _, err := root.Logical().WriteWithContext(ctx, "sys/storage/raft/autopilot/configuration", map[string]any{
		"server_stabilization_time": "2s", "cleanup_dead_servers": false,
	}); err != nil {
		return fmt.Errorf("configuring raft autopilot: %w", err)
	}
	errs := make(chan error, len(r.Nodes))
	for i := 1; i < len(r.Nodes); i++ {
		go func() { errs <- r.unseal(ctx, i) }()
	}
	var all []error
	for i := 1; i < len(r.Nodes); i++ {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// nodeClient is a client of node i alone (no retries), with token.
func (r *RaftCluster) nodeClient(i int, token string) (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = r.Nodes[i].Addr
	cfg.Timeout = 30 * time.Second
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// unseal submits Threshold unseal keys to node i until it reports unsealed.
// A node joining through retry_join accepts keys only once it has reached
// a leader (it reports initialized then), and it decrypts the leader's
// join challenge with them.
func (r *RaftCluster) unseal(ctx context.Context, i int) error {
	c, err := r.nodeClient(i, "")
	if err != nil {
		return err
	}
	n := r.Nodes[i]
	err = Poll(ctx, 90*time.Second, "vault "+n.ID+" unsealed", func(ctx context.Context) (bool, error) {
		if n.Exited() {
			return false, fmt.Errorf("vault %s exited; see %s", n.ID, n.LogPath)
		}
		st, err := c.Sys().SealStatusWithContext(ctx)
		if err != nil || !st.Initialized {
			return false, nil
		}
		if !st.Sealed {
			return true, nil
		}
		if st.Progress == 0 {
			for _, k := range r.UnsealKeys[:r.Threshold] {
				if _, err := c.Sys().UnsealWithContext(ctx, k); err != nil {
					return false, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%w; see %s", err, n.LogPath)
	}
	return nil
}

// WaitHealthy waits until Raft autopilot reports the cluster healthy with
// n voters: every server in contact with the leader and its log caught up
// (a restarted node is a voter in the configuration long before that).
func (r *RaftCluster) WaitHealthy(ctx context.Context, n int, limit time.Duration) error {
	root, err := r.Vault.RootClient()
	if err != nil {
		return err
	}
	last := "no answer"
	err = Poll(ctx, limit, fmt.Sprintf("a healthy vault raft cluster of %d voters", n), func(ctx context.Context) (bool, error) {
		st, err := root.Sys().RaftAutopilotStateWithContext(ctx)
		if err != nil || st == nil {
			return false, nil
		}
		last = fmt.Sprintf("healthy %v, voters %v, non-voters %v", st.Healthy, st.Voters, st.NonVoters)
		return st.Healthy && len(st.Voters) == n, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, last)
	}
	return nil
}

// enableShippedAudit adds the second audit device: a socket device
// streaming every entry to the shipper, as one would stream to a log
// shipper (Fluent Bit, Vector) feeding append-only storage.
func (r *RaftCluster) enableShippedAudit(ctx context.Context) error {
	c, err := r.Vault.RootClient()
	if err != nil {
		return err
	}
	if err := c.Sys().EnableAuditWithOptionsWithContext(ctx, "shipper", &vaultapi.EnableAuditOptions{
		Type: "socket", Options: map[string]string{"address": r.Shipper.Addr, "socket_type": "tcp", "write_timeout": "2s"},
	}); err != nil {
		return fmt.Errorf("enabling socket audit: %w", err)
	}
	return nil
}

// Leader returns the index of the node that leads (sys/leader, asked of
// each live node in turn).
func (r *RaftCluster) Leader(ctx context.Context) (int, error) {
	var errs []error
	for i, n := range r.Nodes {
		if !n.Running() {
			continue
		}
		c, err := r.nodeClient(i, "")
		if err != nil {
			return -1, err
		}
		l, err := c.Sys().LeaderWithContext(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, m := range r.Nodes {
			if l.LeaderAddress == m.Addr {
				return j, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s names leader %q", n.ID, l.LeaderAddress))
	}
	return -1, fmt.Errorf("no vault raft leader: %w", errors.Join(errs...))
}

// KillNode kills node i with SIGKILL and waits for it to exit.
func (r *RaftCluster) KillNode(i int) error { return r.Nodes[i].signal(syscall.SIGKILL) }

// StopNode stops node i with SIGTERM (a graceful shutdown: an active node
// steps down) and waits for it to exit.
func (r *RaftCluster) StopNode(i int) error { return r.Nodes[i].signal(syscall.SIGTERM) }

// StartNode starts node i again on its data directory and unseals it.
func (r *RaftCluster) StartNode(ctx context.Context, i int) error {
	if err := r.Nodes[i].start(); err != nil {
		return err
	}
	return r.unseal(ctx, i)
}

// SnapshotSave writes a Raft snapshot (`vault operator raft snapshot
// save`, sys/storage/raft/snapshot) to path.
func (r *RaftCluster) SnapshotSave(ctx context.Context, path string) error {
	c, err := r.Vault.RootClient()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating snapshot file: %w", err)
	}
	if err := c.Sys().RaftSnapshotWithContext(ctx, f); err != nil {
		f.Close()
		return fmt.Errorf("saving raft snapshot: %w", err)
	}
	return f.Close()
}

// SnapshotRestore installs the snapshot at path, taken on cluster from,
// into this (fresh) cluster: sys/storage/raft/snapshot-force, as `vault
// operator raft snapshot restore -force` does, since the snapshot's keyring
// is not this cluster's. The cluster then holds from's data, keyring, root
// token and configuration; every node is unsealed with from's keys (the
// ones an operator keeps beside the snapshot), the cluster takes over
// from's keys, root token, root CA and audit log paths, and only then goes
// behind its front. from must be another cluster (a restore onto the same
// keyring would not seal the nodes).
func (r *RaftCluster) SnapshotRestore(ctx context.Context, path string, from *RaftCluster) error {
	c, err := r.Vault.RootClient()
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening snapshot: %w", err)
	}
	defer f.Close()
	if err := c.Sys().RaftSnapshotRestoreWithContext(ctx, f, true); err != nil {
		return fmt.Errorf("restoring raft snapshot: %w", err)
	}
	// Each node finds a keyring its root key cannot open once the snapshot
	// is applied, and seals itself; only then do the old keys unseal it.
	if err := r.waitAllSealed(ctx, time.Minute); err != nil {
		return err
	}
	r.UnsealKeys, r.Threshold = from.UnsealKeys, from.Threshold
	r.Vault.RootToken, r.Vault.RootCAPEM, r.Vault.AuditLogPath = from.Vault.RootToken, from.Vault.RootCAPEM, from.Vault.AuditLogPath
	errs := make(chan error, len(r.Nodes))
	for i := range r.Nodes {
		go func() { errs <- r.unseal(ctx, i) }()
	}
	var all []error
	for range r.Nodes {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	if err := r.attach(ctx); err != nil {
		return err
	}
	return r.WaitHealthy(ctx, len(r.Nodes), time.Minute)
}

// waitAllSealed waits until every node reports itself sealed.
func (r *RaftCluster) waitAllSealed(ctx context.Context, limit time.Duration) error {
	return Poll(ctx, limit, "every vault node sealed after the restore", func(ctx context.Context) (bool, error) {
		for i := range r.Nodes {
			c, err := r.nodeClient(i, "")
			if err != nil {
				return false, err
			}
			st, err := c.Sys().SealStatusWithContext(ctx)
			if err != nil || !st.Sealed {
				return false, nil
			}
		}
		return true, nil
	})
}

// Destroy kills every node and deletes its data: the cluster is gone, its
// keys and the snapshots taken of it are all that is left. The front and
// the shipper keep running for a successor (RaftOptions.Front, Shipper).
func (r *RaftCluster) Destroy() error {
	var errs []error
	for _, n := range r.Nodes {
		errs = append(errs, n.signal(syscall.SIGKILL), os.RemoveAll(n.DataDir))
	}
	r.Front.SetBackends(nil)
	return errors.Join(errs...)
}

// Stop kills every node, and closes the front and the shipper if this
// cluster created them.
func (r *RaftCluster) Stop() {
	for _, n := range r.Nodes {
		_ = n.signal(syscall.SIGKILL)
		n.mu.Lock()
		if n.logFile != nil {
			_ = n.logFile.Close()
			n.logFile = nil
		}
		n.mu.Unlock()
	}
	if r.ownFront && r.Front != nil {
		r.Front.Close()
	}
	if r.ownShipper && r.Shipper != nil {
		r.Shipper.Close()
	}
}

// start runs the node's server process.
func (n *RaftNode) start() error {
	bin, err := binary("vault")
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.exited:
		default:
			return fmt.Errorf("vault %s already running", n.ID)
		}
	}
	if n.logFile == nil {
		if n.logFile, err = os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
			return fmt.Errorf("starting vault %s: %w", n.ID, err)
		}
	}
	cmd := exec.Command(bin, "server", "-config="+n.configPath)
	cmd.Stdout, cmd.Stderr = n.logFile, n.logFile
	cmd.Env = append(os.Environ(), "VAULT_DISABLE_MLOCK=true", "HOME="+filepath.Dir(n.DataDir))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting vault %s: %w", n.ID, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	return nil
}

// signal sends sig and waits (up to 30 s) for the process to exit.
func (n *RaftNode) signal(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling vault %s: %w", n.ID, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("vault %s did not exit within 30s of %s", n.ID, sig)
	}
}

// Running reports whether the node's process is alive.
func (n *RaftNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Exited reports whether the node's last process has exited.
func (n *RaftNode) Exited() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// healthStatus is the HTTP status of GET /v1/sys/health at hostPort: 200 active,
// 429 standby, 503 sealed, 501 not initialised; 0 unreachable.
func healthStatus(hc *http.Client, hostPort string) int {
	resp, err := hc.Get("http://" + hostPort + "/v1/sys/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// VaultFront is one client address in front of a Vault cluster: a loopback
// TCP forwarder that sends each new connection to the node whose
// /v1/sys/health answers 200 (the active node), checked every 200 ms. It is
// what a load balancer with that health check, or the Vault Helm chart's
// vault-active Service (pods labelled vault-active=true by Vault's service
// registration), does in production. Connections to a node that dies are
// closed with it; clients reconnect and reach the new active node.
type VaultFront struct {
	// Addr is the clients' address, http://127.0.0.1:<port>.
	Addr string

	l    net.Listener
	hc   *http.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	backends []string
	active   string
	conns    map[net.Conn]struct{}
}

// NewVaultFront listens on a free loopback port. Close stops it.
func NewVaultFront() (*VaultFront, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vault front: %w", err)
	}
	f := &VaultFront{
		Addr:  "http://" + l.Addr().String(),
		l:     l,
		hc:    &http.Client{Timeout: 500 * time.Millisecond},
		stop:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	f.wg.Add(2)
	go f.accept()
	go f.check()
	return f, nil
}

// SetBackends replaces the nodes (host:port) the front may forward to and
// drops the connections it holds.
func (f *VaultFront) SetBackends(backends []string) {
	f.mu.Lock()
	f.backends, f.active = backends, ""
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Active returns the backend the front forwards to now ("" if none).
func (f *VaultFront) Active() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// WaitActive waits until a backend reports itself active.
func (f *VaultFront) WaitActive(ctx context.Context, limit time.Duration) error {
	return Poll(ctx, limit, "an active vault node", func(context.Context) (bool, error) {
		return f.Active() != "", nil
	})
}

// Close stops the front and drops its connections.
func (f *VaultFront) Close() {
	select {
	case <-f.stop:
		return
	default:
	}
	close(f.stop)
	f.l.Close()
	f.SetBackends(nil)
	f.wg.Wait()
}

func (f *VaultFront) check() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		backends := slices.Clone(f.backends)
		f.mu.Unlock()
		active := ""
		for _, b := range backends {
			if healthStatus(f.hc, b) == http.StatusOK {
				active = b
				break
			}
		}
		f.mu.Lock()
		if slices.Equal(backends, f.backends) {
			f.active = active
		}
		f.mu.Unlock()
		select {
		case <-f.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *VaultFront) accept() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.forward(c)
	}
}

// forward connects c to the active node, waiting up to 10 s for one (an
// election in progress), as a load balancer queues a connection until a
// backend passes its health check; with none it closes c.
func (f *VaultFront) forward(c net.Conn) {
	deadline := time.Now().Add(10 * time.Second)
	var b net.Conn
	for b == nil {
		if target := f.Active(); target != "" {
			var err error
			if b, err = net.DialTimeout("tcp", target, time.Second); err != nil {
				b = nil
				f.mu.Lock()
				if f.active == target {
					f.active = "" // dead: wait for the next health check
				}
				f.mu.Unlock()
			}
		}
		if b != nil {
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			return
		}
		select {
		case <-f.stop:
			c.Close()
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	f.mu.Lock()
	f.conns[c], f.conns[b] = struct{}{}, struct{}{}
	f.mu.Unlock()
	Splice(c, b)
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, b)
	f.mu.Unlock()
}

// AuditShipper stands in for a log shipper reading Vault's socket audit
// device: it accepts the device's TCP stream on loopback and appends every
// byte to a file opened append-only.
type AuditShipper struct {
	// Addr is host:port for the socket audit device's address option.
	Addr string
	// Path is the file it appends to.
	Path string

	l  net.Listener
	f  *os.File
	wg sync.WaitGroup
}

// NewAuditShipper listens on a free loopback port and appends to path.
func NewAuditShipper(path string) (*AuditShipper, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit shipper: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit shipper: %w", err)
	}
	s := &AuditShipper{Addr: l.Addr().String(), Path: path, l: l, f: f}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var mu sync.Mutex
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				sc.Buffer(make([]byte, 1<<20), 16<<20)
				for sc.Scan() {
					mu.Lock()
					_, _ = s.f.Write(append(sc.Bytes(), '\n'))
					mu.Unlock()
				}
			}()
		}
	}()
	return s, nil
}

// Close stops accepting and closes the file.
func (s *AuditShipper) Close() {
	s.l.Close()
	s.wg.Wait()
	_ = s.f.Close()
}

// Splice copies a to b and b to a until either side ends, then closes both
// and returns: the data path of the framework's loopback forwarders.
func Splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
	<-done
}
