// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/tlsref"
)

// SDSResolver decides, for a custody Secret being created, whether it must
// be created as an Envoy Gateway SDS reference and with which SDS address.
// It reads only an informer cache: it runs on the admission path.
type SDSResolver struct {
	reader client.Reader
	served Served
}

// NewSDSResolver returns a resolver over reader (a cache holding Gateways,
// ListenerSets when served, and GatewayClasses). It returns nil when the
// Gateway API is not served: then no Secret is ever an SDS reference.
func NewSDSResolver(reader client.Reader, served Served) *SDSResolver {
	if !served.Gateways {
		return nil
	}
	return &SDSResolver{reader: reader, served: served}
}

// URL returns the SDS address for the Secret namespace/name: the value of
// custody.GatewayClassAnnotationSDSURL on the class of every Gateway whose
// listener (its own or an admitted ListenerSet's) references the Secret. It
// returns "" when no Gateway references it, or when one of them is of a
// class that is not marked or is marked with another address: an SDS
// reference would break that Gateway, so the Secret stays kubernetes.io/tls
// and the Checker reports the listener. Only references from the Secret's
// own namespace count (cert-manager's gateway-shim creates Certificates only
// for those).
func (r *SDSResolver) URL(ctx context.Context, namespace, name string) (string, error) {
	secret := types.NamespacedName{Namespace: namespace, Name: name}
	_, refs, gws, err := attachedRefs(ctx, r.reader, r.served, client.InNamespace(namespace))
	if err != nil {
		return "", err
	}
	url := ""
	for _, ref := range refs {
		if ref.Secret != secret {
			continue
		}
		u, err := classURL(ctx, r.reader, string(gws[ref.Gateway].Spec.GatewayClassName))
		if err != nil || u == "" || (url != "" && u != url) {
			return "", err
		}
		url = u
	}
	return url, nil
}

func classURL(ctx context.Context, reader client.Reader, class string) (string, error) {
	var gc gwapiv1.GatewayClass
	if err := reader.Get(ctx, types.NamespacedName{Name: class}, &gc); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return gc.Annotations[custody.GatewayClassAnnotationSDSURL], nil
}

// attachedRefs lists the Secret references of the Gateways that opts
// select and of the ListenerSets that opts select and whose parent Gateway
// exists and admits them (tlsref.ListenerSetAdmitted), each with its
// referencing object at the same index; gws holds every Gateway read, so
// each reference's Ref.Gateway is in it.
func attachedRefs(ctx context.Context, reader client.Reader, served Served, opts ...client.ListOption) (
	objs []client.Object, refs []tlsref.Ref, gws map[types.NamespacedName]*gwapiv1.Gateway, err error) {
	add := func(o client.Object, rs []tlsref.Ref) {
		for _, r := range rs {
			objs, refs = append(objs, o), append(refs, r)
		}
	}
	var list gwapiv1.GatewayList
	if err := reader.List(ctx, &list, opts...); err != nil {
		return nil, nil, nil, fmt.Errorf("listing gateways: %w", err)
	}
	gws = map[types.NamespacedName]*gwapiv1.Gateway{}
	for i := range list.Items {
		gw := &list.Items[i]
		gws[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = gw
		add(gw, tlsref.GatewaySecrets(gw))
	}
	if !served.ListenerSets {
		return objs, refs, gws, nil
	}
	var sets gwapiv1.ListenerSetList
	if err := reader.List(ctx, &sets, opts...); err != nil {
		return nil, nil, nil, fmt.Errorf("listing listenersets: %w", err)
	}
	for i := range sets.Items {
		ls := &sets.Items[i]
		parent, ok := tlsref.ListenerSetParent(ls)
		if !ok {
			continue
		}
		gw := gws[parent]
		if gw == nil { // a parent in another namespace
			gw = &gwapiv1.Gateway{}
			if err := reader.Get(ctx, parent, gw); err != nil {
				if client.IgnoreNotFound(err) != nil {
					return nil, nil, nil, fmt.Errorf("reading gateway %s of listenerset %s/%s: %w", parent, ls.Namespace, ls.Name, err)
				}
				continue
			}
			gws[parent] = gw
		}
		if tlsref.ListenerSetAdmitted(gw, ls) {
			add(ls, tlsref.ListenerSetSecrets(ls))
		}
	}
	return objs, refs, gws, nil
}
