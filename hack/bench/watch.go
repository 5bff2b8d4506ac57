// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// eventListed marks objects delivered from a (re-)list rather than a watch.
const eventListed watch.EventType = "LISTED"

// follower keeps a watch open until ctx ends: it lists once (delivering each
// object as eventListed when deliverList is set), watches from the list's
// resourceVersion, and resumes from the last seen resourceVersion when the
// server closes the watch. Each event is stamped with the time it arrived.
type follower struct {
	list        func(ctx context.Context) (rv string, objs []runtime.Object, err error)
	watch       func(ctx context.Context, rv string) (watch.Interface, error)
	onEvent     func(t watch.EventType, obj runtime.Object, at time.Time)
	deliverList bool
}

// start lists synchronously (so the caller knows the watch covers everything
// after this call) and follows in the background. The returned channel closes
// when the follower stops.
func (f follower) start(ctx context.Context) (<-chan struct{}, error) {
	rv, objs, err := f.list(ctx)
	if err != nil {
		return nil, err
	}
	if f.deliverList {
		now := time.Now()
		for _, o := range objs {
			f.onEvent(eventListed, o, now)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w, err := f.watch(ctx, rv)
			if err != nil {
				// Expired or refused: list again; with deliverList the caller
				// sees the current state, so nothing is lost, only late.
				time.Sleep(200 * time.Millisecond)
				if rv2, objs, lerr := f.list(ctx); lerr == nil {
					rv = rv2
					if f.deliverList {
						now := time.Now()
						for _, o := range objs {
							f.onEvent(eventListed, o, now)
						}
					}
				}
				continue
			}
			for ev := range w.ResultChan() {
				at := time.Now()
				if ev.Type == watch.Error {
					rv = ""
					break
				}
				if acc, err := meta.Accessor(ev.Object); err == nil {
					rv = acc.GetResourceVersion()
				}
				if ev.Type != watch.Bookmark {
					f.onEvent(ev.Type, ev.Object, at)
				}
			}
			w.Stop()
			if rv == "" {
				if rv2, objs, lerr := f.list(ctx); lerr == nil {
					rv = rv2
					if f.deliverList {
						now := time.Now()
						for _, o := range objs {
							f.onEvent(eventListed, o, now)
						}
					}
				}
			}
		}
	}()
	return done, nil
}

// secretFollower follows the Secrets of ns from now on (the list only
// supplies the resourceVersion to watch from).
func secretFollower(kube kubernetes.Interface, ns string, onEvent func(watch.EventType, runtime.Object, time.Time)) follower {
	return follower{
		list: func(ctx context.Context) (string, []runtime.Object, error) {
			l, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return "", nil, err
			}
			return l.ResourceVersion, nil, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return kube.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		},
		onEvent: onEvent,
	}
}
