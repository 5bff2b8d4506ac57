// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeCounter counts watch events (each one a new resourceVersion: an
// object written) on Secrets, Certificates and CertificateRequests,
// cluster-wide, for the namespaces classify names. Every such write wakes
// cert-manager's controllers for that object, and their handlers scan the
// namespace, so the writes per issuance are what a namespace's size
// amplifies.
type writeCounter struct {
	mu sync.Mutex
	// writes is keyed "<kind> <event> <class> by <field manager>" (without
	// the class when it is "").
	writes map[string]int
	// total counts writes per class.
	total map[string]int
	stop  context.CancelFunc
	dones []<-chan struct{}
}

// countWrites starts the watches. classify returns the class of a namespace
// ("custody", "baseline", or "" for no class) and false for namespaces not
// counted.
// The watches cover everything written after countWrites returns.
func (b *bench) countWrites(ctx context.Context, classify func(namespace string) (string, bool)) (*writeCounter, error) {
	wc := &writeCounter{writes: map[string]int{}, total: map[string]int{}}
	wctx, stop := context.WithCancel(ctx)
	wc.stop = stop
	count := func(kind string) func(watch.EventType, runtime.Object, time.Time) {
		return func(t watch.EventType, obj runtime.Object, _ time.Time) {
			acc, err := meta.Accessor(obj)
			if err != nil {
				return
			}
			class, ok := classify(acc.GetNamespace())
			if !ok {
				return
			}
			wc.mu.Lock()
			defer wc.mu.Unlock()
			key := kind + " " + strings.ToLower(string(t))
			if class != "" {
				key += " " + class
			}
			wc.writes[key+" by "+lastManager(obj)]++
			wc.total[class]++
		}
	}
	type kind struct {
		name string
		list client.ObjectList
	}
	for _, k := range []kind{{"Secret", &corev1.SecretList{}}, {"Certificate", &cmapi.CertificateList{}}, {"CertificateRequest", &cmapi.CertificateRequestList{}}} {
		done, err := follower{
			list: func(ctx context.Context) (string, []runtime.Object, error) {
				l := k.list.DeepCopyObject().(client.ObjectList)
				// One item is enough for the resourceVersion to watch from.
				if err := b.c.List(ctx, l, client.Limit(1)); err != nil {
					return "", nil, err
				}
				return l.GetResourceVersion(), nil, nil
			},
			watch: func(ctx context.Context, rv string) (watch.Interface, error) {
				return b.c.Watch(ctx, k.list.DeepCopyObject().(client.ObjectList), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			},
			onEvent: count(k.name),
		}.start(wctx)
		if err != nil {
			stop()
			wc.wait()
			return nil, fmt.Errorf("watching %s: %w", k.name, err)
		}
		wc.dones = append(wc.dones, done)
	}
	return wc, nil
}

func (wc *writeCounter) wait() {
	for _, d := range wc.dones {
		<-d
	}
}

// finish stops the watches and returns the counts.
func (wc *writeCounter) finish() (writes, total map[string]int) {
	wc.stop()
	wc.wait()
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.writes, wc.total
}
