// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"context"

	"k8s.io/client-go/rest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// PlaceholderWarning is the warning the kube-apiserver returns for every
// write of a kubernetes.io/tls Secret whose tls.key holds no PEM block
// (the Secret strategy checks the pair with tls.X509KeyPair). Every
// placeholder draws it, by design: its tls.key is empty.
const PlaceholderWarning = "tls: failed to find any PEM data in key input"

// placeholderWarnings logs the kube-apiserver's warnings on Keyward's own
// requests as controller-runtime does by default, except PlaceholderWarning,
// which the watcher's placeholder writes draw every time and which says
// nothing an operator must act on.
type placeholderWarnings struct {
	next rest.WarningHandlerWithContext
}

func (w placeholderWarnings) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, message string) {
	if message == PlaceholderWarning {
		return
	}
	w.next.HandleWarningHeaderWithContext(ctx, code, agent, message)
}

// withWarningFilter returns a copy of cfg whose clients drop
// PlaceholderWarning and log every other warning. A handler the caller set
// is kept as it is.
func withWarningFilter(cfg *rest.Config) *rest.Config {
	if cfg.WarningHandler != nil || cfg.WarningHandlerWithContext != nil {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandlerWithContext = placeholderWarnings{next: crlog.NewKubeAPIWarningLogger(crlog.KubeAPIWarningLoggerOptions{})}
	return cfg
}
