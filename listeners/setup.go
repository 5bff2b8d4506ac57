// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways;listenersets;gatewayclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=apisix.apache.org,resources=apisixtlses,verbs=get;list;watch

// ControllerName names the Checker's controller (metrics, logs).
const ControllerName = "tls-references"

// Options configure Setup.
type Options struct {
	// Served is what Discover found.
	Served Served
	// SecretCaches are the caches holding custody Secrets (the manager's
	// cache for kubernetes.io/tls, the SDS cache), watched for changes.
	SecretCaches []cache.Cache
	// Secrets reads custody Secrets from those caches (scrubber.SecretReader).
	Secrets client.Reader
	// Registerer for keyward_tls_references.
	Registerer prometheus.Registerer
}

// sweep is the one key the Checker's queue holds.
var sweep = reconcile.Request{NamespacedName: types.NamespacedName{Name: "all"}}

// Setup adds the Checker to mgr (leader-elected, like every controller) and
// returns the SDS resolver for the scrub webhook (nil when the Gateway API is
// not served). mgr's scheme must know the Gateway API and cert-manager types.
func Setup(mgr ctrl.Manager, o Options) (*SDSResolver, error) {
	c, err := NewChecker(mgr.GetCache(), o.Secrets, o.Served, mgr.GetEventRecorder("keyward-tls-references"), o.Registerer)
	if err != nil {
		return nil, err
	}
	all := func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{sweep} }
	b := ctrl.NewControllerManagedBy(mgr).Named(ControllerName).
		Watches(&networkingv1.Ingress{}, handler.EnqueueRequestsFromMapFunc(all))
	if o.Served.Gateways {
		b = b.Watches(&gwapiv1.Gateway{}, handler.EnqueueRequestsFromMapFunc(all)).
			Watches(&gwapiv1.GatewayClass{}, handler.EnqueueRequestsFromMapFunc(all))
	}
	if o.Served.ListenerSets {
		b = b.Watches(&gwapiv1.ListenerSet{}, handler.EnqueueRequestsFromMapFunc(all))
	}
	if o.Served.ApisixTls {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(ApisixTlsGVK)
		b = b.Watches(u, handler.EnqueueRequestsFromMapFunc(all))
	}
	// Only custody placeholders matter, and only their type and custody
	// markers: a Secret becoming (or ceasing to be) a placeholder.
	placeholder := predicate.NewTypedPredicateFuncs(func(s *corev1.Secret) bool {
		_, ok := custody.ParsePlaceholder(s)
		return ok
	})
	for _, sc := range o.SecretCaches {
		b = b.WatchesRawSource(source.Kind(sc, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(context.Context, *corev1.Secret) []reconcile.Request { return []reconcile.Request{sweep} }), placeholder))
	}
	if err := b.Complete(c); err != nil {
		return nil, fmt.Errorf("setting up %s: %w", ControllerName, err)
	}
	return NewSDSResolver(mgr.GetCache(), o.Served), nil
}
