// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"k8s.io/client-go/kubernetes"
)

// apiProfileChunk is the length of one kube-apiserver CPU profile request;
// an arm is covered by consecutive chunks, merged when it ends.
const apiProfileChunk = 10

// startAPIServerProfile records kube-apiserver's CPU profile (its
// /debug/pprof/profile endpoint, on by default) in consecutive
// apiProfileChunk-second pieces until the returned stop is called, then
// merges the pieces into path with `go tool pprof -proto`. Errors are
// returned by stop; a missing profile never fails the run.
func startAPIServerProfile(ctx context.Context, kube kubernetes.Interface, path string) func() error {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg     sync.WaitGroup
		pieces []string
		err    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			raw, e := kube.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
				Param("seconds", fmt.Sprint(apiProfileChunk)).DoRaw(context.WithoutCancel(ctx))
			if e != nil {
				err = fmt.Errorf("kube-apiserver profile: %w", e)
				return
			}
			p := fmt.Sprintf("%s.%d", path, i)
			if e := os.WriteFile(p, raw, 0o644); e != nil {
				err = e
				return
			}
			pieces = append(pieces, p)
		}
	}()
	return func() error {
		cancel()
		wg.Wait()
		if err != nil {
			return err
		}
		if len(pieces) == 0 {
			return fmt.Errorf("kube-apiserver profile: no piece recorded")
		}
		out, e := exec.Command("go", append([]string{"tool", "pprof", "-proto"}, pieces...)...).Output()
		if e != nil {
			return fmt.Errorf("merging kube-apiserver profile pieces: %w", e)
		}
		for _, p := range pieces {
			os.Remove(p)
		}
		return os.WriteFile(path, out, 0o644)
	}
}
