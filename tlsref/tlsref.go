// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package tlsref answers one question for the custody components and
// `keyward sds`: which TLS Secrets does a serving object (a Gateway API
// Gateway or ListenerSet, an Ingress, an APISIX ApisixTls) tell its data
// plane to load, and from which listener. It is pure: no clients, no cache.
//
// Only references a data plane would load as a server certificate count: a
// Gateway or ListenerSet listener of protocol HTTPS or TLS in Terminate mode
// (the default), whose certificateRef is a core Secret; an Ingress tls entry
// with a secretName. A Passthrough listener terminates nothing, so it
// references nothing (the fallback that puts a Keyward-fed terminator
// behind such a listener is exactly that case).
package tlsref

import (
	"cmp"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Kinds of referencing objects.
const (
	KindGateway     = "Gateway"
	KindListenerSet = "ListenerSet"
	KindIngress     = "Ingress"
	KindApisixTls   = "ApisixTls"
)

// Ref is one reference from a serving object to a TLS Secret.
type Ref struct {
	// Kind, Namespace and Name identify the referencing object.
	Kind, Namespace, Name string
	// Listener is the listener's name (Gateway, ListenerSet); "" for the
	// other kinds.
	Listener string
	// Gateway is the Gateway whose data plane serves the listener: the
	// Gateway itself, or a ListenerSet's parent. Zero for the other kinds.
	Gateway types.NamespacedName
	// Secret is the referenced Secret.
	Secret types.NamespacedName
}

// Object is "<kind> <namespace>/<name>", for messages.
func (r Ref) Object() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// GatewaySecrets returns the Secrets gw's own listeners terminate TLS with,
// in listener order.
func GatewaySecrets(gw *gwapiv1.Gateway) []Ref {
	self := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	var refs []Ref
	for _, l := range gw.Spec.Listeners {
		refs = appendListener(refs, KindGateway, gw.Namespace, gw.Name, string(l.Name), l.Protocol, l.TLS, self)
	}
	return refs
}

// ListenerSetParent is the Gateway a ListenerSet attaches to, and whether
// its parentRef names a Gateway at all (group gateway.networking.k8s.io,
// kind Gateway, the defaults).
func ListenerSetParent(ls *gwapiv1.ListenerSet) (types.NamespacedName, bool) {
	p := ls.Spec.ParentRef
	if p.Group != nil && string(*p.Group) != gwapiv1.GroupName {
		return types.NamespacedName{}, false
	}
	if p.Kind != nil && string(*p.Kind) != KindGateway {
		return types.NamespacedName{}, false
	}
	ns := ls.Namespace
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	return types.NamespacedName{Namespace: ns, Name: string(p.Name)}, true
}

// ListenerSetAdmitted reports whether gw (ls's parent) admits ls, per its
// spec.allowedListeners: None (the default) admits no ListenerSet, Same only
// those in gw's namespace, All every one. Selector counts as admitting: the
// namespace labels it selects on are not read here, and the gateway
// controller has the final word. A ListenerSet its parent does not admit
// is not attached: its listeners reference nothing a data plane loads.
func ListenerSetAdmitted(gw *gwapiv1.Gateway, ls *gwapiv1.ListenerSet) bool {
	from := gwapiv1.NamespacesFromNone
	if al := gw.Spec.AllowedListeners; al != nil && al.Namespaces != nil && al.Namespaces.From != nil {
		from = *al.Namespaces.From
	}
	switch from {
	case gwapiv1.NamespacesFromAll, gwapiv1.NamespacesFromSelector:
		return true
	case gwapiv1.NamespacesFromSame:
		return ls.Namespace == gw.Namespace
	}
	return false
}

// ListenerSetSecrets returns the Secrets ls's listeners terminate TLS with;
// Ref.Gateway is its parent. A ListenerSet whose parentRef is not a Gateway
// references nothing.
func ListenerSetSecrets(ls *gwapiv1.ListenerSet) []Ref {
	parent, ok := ListenerSetParent(ls)
	if !ok {
		return nil
	}
	var refs []Ref
	for _, l := range ls.Spec.Listeners {
		refs = appendListener(refs, KindListenerSet, ls.Namespace, ls.Name, string(l.Name), l.Protocol, l.TLS, parent)
	}
	return refs
}

func appendListener(refs []Ref, kind, ns, name, listener string, proto gwapiv1.ProtocolType, tls *gwapiv1.ListenerTLSConfig, gw types.NamespacedName) []Ref {
	if tls == nil || (proto != gwapiv1.HTTPSProtocolType && proto != gwapiv1.TLSProtocolType) {
		return refs
	}
	if tls.Mode != nil && *tls.Mode != gwapiv1.TLSModeTerminate {
		return refs
	}
	for _, c := range tls.CertificateRefs {
		if c.Group != nil && *c.Group != "" {
			continue
		}
		if c.Kind != nil && *c.Kind != "Secret" {
			continue
		}
		secretNS := ns
		if c.Namespace != nil && *c.Namespace != "" {
			secretNS = string(*c.Namespace)
		}
		refs = append(refs, Ref{
			Kind: kind, Namespace: ns, Name: name, Listener: listener, Gateway: gw,
			Secret: types.NamespacedName{Namespace: secretNS, Name: string(c.Name)},
		})
	}
	return refs
}

// IngressSecrets returns the Secrets ing's tls entries name (an Ingress's
// Secrets are always in its own namespace).
func IngressSecrets(ing *networkingv1.Ingress) []Ref {
	var refs []Ref
	for _, t := range ing.Spec.TLS {
		if t.SecretName == "" {
			continue
		}
		refs = append(refs, Ref{Kind: KindIngress, Namespace: ing.Namespace, Name: ing.Name,
			Secret: types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName}})
	}
	return refs
}

// ApisixTlsSecret returns the Secret an apisix.apache.org/v2 ApisixTls's
// spec.secret names (namespace and name, both required by its schema), read
// from the object's unstructured content so no APISIX types are needed.
func ApisixTlsSecret(namespace, name string, content map[string]any) []Ref {
	spec, _ := content["spec"].(map[string]any)
	secret, _ := spec["secret"].(map[string]any)
	sName, _ := secret["name"].(string)
	sNS, _ := secret["namespace"].(string)
	if sName == "" {
		return nil
	}
	if sNS == "" {
		sNS = namespace
	}
	return []Ref{{Kind: KindApisixTls, Namespace: namespace, Name: name,
		Secret: types.NamespacedName{Namespace: sNS, Name: sName}}}
}

// Sort orders refs by Secret, then referencing object and listener, so
// callers compare and print them deterministically.
func Sort(refs []Ref) {
	slices.SortFunc(refs, func(a, b Ref) int {
		return cmp.Or(
			cmp.Compare(a.Secret.Namespace, b.Secret.Namespace), cmp.Compare(a.Secret.Name, b.Secret.Name),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Listener, b.Listener))
	})
}
