// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package keyward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/e2e/framework"
)

// Replicas is Keyward deployed as the chart deploys it: several processes
// of the keyward binary with leader election, every one serving the
// webhooks, behind one address. In a cluster that address is the webhook
// Service, whose endpoints kube-proxy balances and drops when a pod is not
// ready; here a loopback TCP balancer (Balancer) on the address the
// apiserver calls does the same: each new connection goes to the next
// replica that accepts it, so a dead replica only costs the calls that were
// in flight on its connections.
type Replicas struct {
	// Procs are the replicas, by index; Restart replaces an entry.
	Procs []*Process
	// Balancer fronts them.
	Balancer *Balancer
	stack    *Stack
	ports    []int
	options  func(*app.Options)
}

// StartKeywardReplicas starts n Keyward processes with leader election on
// (lease timings set by options, applied after the stack's own), each with
// its webhook server on a free loopback port, and the balancer on the
// address the apiserver calls. The stack must have been started with
// NoKeyward. Stop them with Stop.
func (s *Stack) StartKeywardReplicas(ctx context.Context, n int, options func(*app.Options)) (*Replicas, error) {
	if s.Keyward != nil || (s.proc != nil && !s.proc.Exited()) {
		return nil, errors.New("keyward already running")
	}
	r := &Replicas{stack: s, options: options}
	for range n {
		port, err := framework.FreePort()
		if err != nil {
			return nil, err
		}
		r.ports = append(r.ports, port)
	}
	for i := range n {
		p, err := r.start(ctx, i)
		if err != nil {
			r.Stop()
			return nil, fmt.Errorf("starting keyward replica %d: %w", i, err)
		}
		r.Procs = append(r.Procs, p)
	}
	backends := make([]string, n)
	for i, port := range r.ports {
		backends[i] = net.JoinHostPort(s.Webhook.LocalServingHost, strconv.Itoa(port))
	}
	b, err := StartBalancer(net.JoinHostPort(s.Webhook.LocalServingHost, strconv.Itoa(s.Webhook.LocalServingPort)), backends)
	if err != nil {
		r.Stop()
		return nil, err
	}
	r.Balancer = b
	return r, nil
}

func (r *Replicas) start(ctx context.Context, i int) (*Process, error) {
	o := r.stack.Options()
	o.LeaderElect = true
	if r.options != nil {
		r.options(o)
	}
	return r.stack.startProcess(ctx, o, r.ports[i])
}

// Restart stops replica i as the kubelet does in a rolling update (SIGTERM,
// graceful shutdown: it releases the lease if it leads) and starts it
// again on the same port.
func (r *Replicas) Restart(ctx context.Context, i int) error {
	if err := r.Procs[i].Stop(); err != nil {
		return fmt.Errorf("stopping keyward replica %d: %w", i, err)
	}
	p, err := r.start(ctx, i)
	if err != nil {
		return fmt.Errorf("restarting keyward replica %d: %w", i, err)
	}
	r.Procs[i] = p
	return nil
}

// Leader returns the index of the live replica that reports itself leader
// (controller-runtime's leader_election_master_status gauge), or -1.
func (r *Replicas) Leader(ctx context.Context) int {
	for i, p := range r.Procs {
		if p.Exited() {
			continue
		}
		if v, err := p.Gauge(ctx, "leader_election_master_status"); err == nil && v == 1 {
			return i
		}
	}
	return -1
}

// Stop stops the balancer and every replica.
func (r *Replicas) Stop() {
	if r.Balancer != nil {
		r.Balancer.Close()
	}
	for _, p := range r.Procs {
		_ = p.Stop()
	}
}

// Gauge reads the first sample of a metric from the process's /metrics.
func (p *Process) Gauge(ctx context.Context, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	return 0, fmt.Errorf("metric %s not exposed by keyward at %s", name, p.MetricsAddr)
}

// Balancer is a loopback TCP balancer: each accepted connection is proxied
// to the next backend, in turn, that accepts a connection; a backend that
// refuses is skipped for that connection.
type Balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	// Conns counts the connections proxied to each backend.
	conns []atomic.Int64
	wg    sync.WaitGroup
}

// StartBalancer listens on addr and proxies to backends.
func StartBalancer(addr string, backends []string) (*Balancer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("balancer listening on %s: %w", addr, err)
	}
	b := &Balancer{ln: ln, backends: backends, conns: make([]atomic.Int64, len(backends))}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

// Conns returns how many connections went to each backend so far.
func (b *Balancer) Conns() []int64 {
	out := make([]int64, len(b.conns))
	for i := range b.conns {
		out[i] = b.conns[i].Load()
	}
	return out
}

// Close stops accepting; proxied connections end with their peers.
func (b *Balancer) Close() {
	_ = b.ln.Close()
	b.wg.Wait()
}

func (b *Balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.proxy(c)
	}
}

func (b *Balancer) proxy(c net.Conn) {
	defer c.Close()
	start := int(b.next.Add(1))
	for k := range b.backends {
		i := (start + k) % len(b.backends)
		up, err := net.DialTimeout("tcp", b.backends[i], time.Second)
		if err != nil {
			continue
		}
		b.conns[i].Add(1)
		framework.Splice(c, up)
		return
	}
}
