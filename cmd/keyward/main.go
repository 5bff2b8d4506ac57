// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command keyward runs Keyward: the VaultIssuer/VaultClusterIssuer
// controllers, the custody watcher and the admission webhooks. `keyward
// agent` runs the delivery sidecar instead (see package agent), `keyward
// sds` the Envoy SDS sidecar (package sdsserver), `keyward status` shows
// what custody holds (package status). Installed as kubectl-keyward on
// PATH it is a kubectl plugin: `kubectl keyward status`.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/keyward-io/keyward/cmd/keyward/agent"
	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/cmd/keyward/kmsplugin"
	"github.com/keyward-io/keyward/cmd/keyward/migrate"
	"github.com/keyward-io/keyward/cmd/keyward/sdsserver"
	"github.com/keyward-io/keyward/cmd/keyward/status"
	"github.com/keyward-io/keyward/internal/memlimit"
)

// kubectlPlugin is the name kubectl looks for on PATH to run `kubectl
// keyward ...`; invoked so, only the plugin's subcommands exist.
const kubectlPlugin = "kubectl-keyward"

func main() {
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == kubectlPlugin {
		os.Exit(runPlugin(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "status" {
		os.Exit(status.Main(context.Background(), "keyward status", os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(runAgent(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "kms" {
		os.Exit(runKMS(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "migrate-custody" {
		os.Exit(migrate.Main(ctrl.SetupSignalHandler(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "sds" {
		os.Exit(runSDS(os.Args[2:]))
	}
	opts := app.NewOptions()
	fs := pflag.NewFlagSet("keyward", pflag.ExitOnError)
	opts.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if err := opts.Complete(fs); err != nil {
		fmt.Fprintln(os.Stderr, "keyward:", err)
		os.Exit(2)
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "keyward: invalid configuration:", err)
		os.Exit(2)
	}
	// zap is configured here and nowhere else.
	log := crzap.New(crzap.UseDevMode(opts.LogFormat == "text"), crzap.Level(zapcore.Level(-opts.Verbosity)))
	ctrl.SetLogger(log)
	// Process-wide, so here rather than in app.Run (which tests run
	// in-process).
	if lim, err := memlimit.Apply(opts.MemoryLimitRatio); err != nil {
		log.Error(err, "Go memory limit not set from the cgroup")
	} else {
		log.Info("Go memory limit", "limit", lim.Describe())
	}

	ctx := ctrl.SetupSignalHandler()
	if err := app.Run(ctx, ctrl.GetConfigOrDie(), opts, app.Deps{Logger: log}); err != nil {
		log.Error(err, "keyward stopped")
		os.Exit(1)
	}
}

func runAgent(args []string) int {
	opts := agent.NewOptions()
	agent.RegisterGatewaySinks(opts)
	fs := pflag.NewFlagSet("keyward agent", pflag.ExitOnError)
	opts.AddFlags(fs)
	_ = fs.Parse(args)
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "keyward agent: invalid configuration:", err)
		return 2
	}
	log := crzap.New(crzap.UseDevMode(opts.LogFormat == "text"), crzap.Level(zapcore.Level(-opts.Verbosity)))
	ctx := ctrl.SetupSignalHandler()
	if err := agent.Run(ctx, nil, opts, log.WithName("agent"), nil); err != nil {
		log.Error(err, "keyward agent stopped")
		return 1
	}
	return 0
}

// runKMS is `keyward kms`: the kube-apiserver's KMS v2 plugin on Vault
// Transit. It never contacts the Kubernetes API.
func runKMS(args []string) int {
	opts := kmsplugin.NewOptions()
	fs := pflag.NewFlagSet("keyward kms", pflag.ExitOnError)
	opts.AddFlags(fs)
	_ = fs.Parse(args)
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "keyward kms: invalid configuration:", err)
		return 2
	}
	log := crzap.New(crzap.UseDevMode(opts.LogFormat == "text"), crzap.Level(zapcore.Level(-opts.Verbosity)))
	ctx := ctrl.SetupSignalHandler()
	if err := kmsplugin.Run(ctx, opts, log.WithName("kms"), nil); err != nil {
		log.Error(err, "keyward kms stopped")
		return 1
	}
	return 0
}

// runSDS is `keyward sds`: the Envoy SDS server sidecar fed from custody.
func runSDS(args []string) int {
	opts := sdsserver.NewOptions()
	fs := pflag.NewFlagSet("keyward sds", pflag.ExitOnError)
	opts.AddFlags(fs)
	_ = fs.Parse(args)
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "keyward sds: invalid configuration:", err)
		return 2
	}
	log := crzap.New(crzap.UseDevMode(opts.Shared.LogFormat == "text"), crzap.Level(zapcore.Level(-opts.Shared.Verbosity)))
	ctx := ctrl.SetupSignalHandler()
	if err := sdsserver.Run(ctx, nil, opts, log.WithName("sds"), nil); err != nil {
		log.Error(err, "keyward sds stopped")
		return 1
	}
	return 0
}

// runPlugin is `kubectl keyward SUBCOMMAND`: kubectl runs kubectl-keyward
// with the words after `keyward`.
func runPlugin(args []string) int {
	if len(args) > 0 && args[0] == "status" {
		return status.Main(context.Background(), "kubectl keyward status", args[1:], os.Stdout, os.Stderr)
	}
	fmt.Fprintln(os.Stderr, "Usage: kubectl keyward status [NAME...] [flags]   (see kubectl keyward status --help)")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return 0
	}
	return 2
}
