// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/apisix"
	"github.com/keyward-io/keyward/delivery/kong"
)

// RegisterGatewaySinks adds the APISIX and Kong sinks (--sink apisix,
// --sink kong) and their flags.
func RegisterGatewaySinks(o *Options) {
	ao := &apisix.Options{}
	o.RegisterSink("apisix", SinkFactory{
		AddFlags: ao.AddFlags,
		New: func(ctx context.Context, d SinkDeps) (delivery.Sink, error) {
			deps := apisix.Deps{}
			if ao.Mode == apisix.ModeSecretRef {
				// The mirror is written with the agent's own Vault login,
				// so the sink can only be built once that login succeeded.
				if d.Vault == nil {
					return nil, errors.New("secret-ref mode mirrors records into Vault: it needs --custody-store vault")
				}
				c, err := d.Vault.Wait(ctx)
				if err != nil {
					return nil, fmt.Errorf("secret-ref mode needs the agent's vault login: %w", err)
				}
				deps.Vault = c
			}
			return apisix.New(*ao, deps)
		},
	})
	ko := &kong.Options{}
	o.RegisterSink("kong", SinkFactory{
		AddFlags: ko.AddFlags,
		New: func(context.Context, SinkDeps) (delivery.Sink, error) {
			return kong.New(*ko, kong.Deps{})
		},
	})
}
