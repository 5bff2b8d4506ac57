// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"context"
	"fmt"
	"sync"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/internal/promreg"
	"github.com/keyward-io/keyward/tlsref"
)

// EventReasonUnservable is the reason of the Warning event the Checker
// records on the referencing object and on the Certificate.
const EventReasonUnservable = "CustodyKeyUnservable"

// annotationCertificateName is cert-manager's annotation naming a Secret's Certificate.
const annotationCertificateName = "cert-manager.io/certificate-name"

// Checker finds the references to custody placeholders that have no path to
// the key. It re-checks every reference on any change to a referencing
// object, a GatewayClass or a custody Secret (all from informer caches; one
// pass at a time, so a burst of changes costs one or two passes), sets
// keyward_tls_references{kind,state} and records a Warning event on the
// referencing object and on the Certificate when a reference becomes
// unservable or its reason changes.
type Checker struct {
	reader   client.Reader // informer cache: referencing objects, GatewayClasses, Certificates
	secrets  client.Reader // custody Secrets (scrubber.SecretReader)
	served   Served
	recorder events.EventRecorder
	refs     *prometheus.GaugeVec

	mu       sync.Mutex
	reported map[string]string // reference identity → reason last reported
}

// NewChecker returns a Checker. Register it with Setup.
func NewChecker(reader, secrets client.Reader, served Served, recorder events.EventRecorder, reg prometheus.Registerer) (*Checker, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keyward_tls_references",
		Help: "References from Gateway listeners, ListenerSets, Ingress tls entries and ApisixTls objects to custody placeholder Secrets, by kind and state (servable, unservable, acknowledged).",
	}, []string{"kind", "state"})
	g, err := promreg.Register(reg, g)
	if err != nil {
		return nil, err
	}
	return &Checker{reader: reader, secrets: secrets, served: served, recorder: recorder, refs: g, reported: map[string]string{}}, nil
}

// finding is one reference to a custody placeholder and its verdict.
type finding struct {
	ref     tlsref.Ref
	object  client.Object // the referencing object (events go to it)
	secret  *corev1.Secret
	verdict Verdict
}

// Reconcile checks every reference. The request is ignored: there is one key.
func (c *Checker) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	found, err := c.check(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	c.publish(ctx, found)
	return reconcile.Result{}, nil
}

// check lists the referencing objects and judges each reference to a
// custody placeholder.
func (c *Checker) check(ctx context.Context) ([]finding, error) {
	objs, refs, gateways, err := c.references(ctx)
	if err != nil {
		return nil, err
	}
	var found []finding
	for i, ref := range refs {
		var s corev1.Secret
		if err := c.secrets.Get(ctx, ref.Secret, &s); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return nil, fmt.Errorf("reading secret %s referenced by %s: %w", ref.Secret, ref.Object(), err)
			}
			continue
		}
		if _, ok := custody.ParsePlaceholder(&s); !ok {
			continue
		}
		url, ack := "", served(objs[i])
		if gw := gateways[ref.Gateway]; gw != nil {
			ack = ack || served(gw)
			if url, err = classURL(ctx, c.reader, string(gw.Spec.GatewayClassName)); err != nil {
				return nil, err
			}
		}
		found = append(found, finding{ref: ref, object: objs[i], secret: &s, verdict: Judge(ref, &s, url, ack)})
	}
	return found, nil
}

func served(o client.Object) bool { return o.GetAnnotations()[AnnotationTLSServedBy] != "" }

// references lists every reference, with its referencing object at the
// same index, and the Gateways read.
func (c *Checker) references(ctx context.Context) ([]client.Object, []tlsref.Ref, map[types.NamespacedName]*gwapiv1.Gateway, error) {
	var objs []client.Object
	var refs []tlsref.Ref
	var gateways map[types.NamespacedName]*gwapiv1.Gateway
	if c.served.Gateways {
		var err error
		if objs, refs, gateways, err = attachedRefs(ctx, c.reader, c.served); err != nil {
			return nil, nil, nil, err
		}
	}
	add := func(o client.Object, rs []tlsref.Ref) {
		for _, r := range rs {
			objs, refs = append(objs, o), append(refs, r)
		}
	}
	var ings networkingv1.IngressList
	if err := c.reader.List(ctx, &ings); err != nil {
		return nil, nil, nil, fmt.Errorf("listing ingresses: %w", err)
	}
	for i := range ings.Items {
		add(&ings.Items[i], tlsref.IngressSecrets(&ings.Items[i]))
	}
	if c.served.ApisixTls {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(ApisixTlsGVK.GroupVersion().WithKind(ApisixTlsGVK.Kind + "List"))
		if err := c.reader.List(ctx, list); err != nil {
			return nil, nil, nil, fmt.Errorf("listing apisixtlses: %w", err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			add(u, tlsref.ApisixTlsSecret(u.GetNamespace(), u.GetName(), u.Object))
		}
	}
	return objs, refs, gateways, nil
}

// publish sets the gauge and records events for references that became
// unservable (or changed reason) since the last pass.
func (c *Checker) publish(ctx context.Context, found []finding) {
	counts := map[[2]string]float64{}
	for _, k := range []string{tlsref.KindGateway, tlsref.KindListenerSet, tlsref.KindIngress, tlsref.KindApisixTls} {
		for _, s := range []string{StateServable, StateUnservable, StateAcknowledged} {
			counts[[2]string{k, s}] = 0
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := map[string]string{}
	for _, f := range found {
		counts[[2]string{f.ref.Kind, f.verdict.State}]++
		if f.verdict.State != StateUnservable {
			continue
		}
		id := fmt.Sprintf("%s|%s|%s", f.ref.Object(), f.ref.Listener, f.ref.Secret)
		now[id] = f.verdict.Reason
		if c.reported[id] == f.verdict.Reason {
			continue
		}
		logf.FromContext(ctx).Info("custody key unservable", "object", f.ref.Object(), "listener", f.ref.Listener,
			"secret", f.ref.Secret.String(), "reason", f.verdict.Reason)
		c.event(ctx, f)
	}
	c.reported = now
	for k, v := range counts {
		c.refs.WithLabelValues(k[0], k[1]).Set(v)
	}
}

func (c *Checker) event(ctx context.Context, f finding) {
	if c.recorder == nil {
		return
	}
	c.recorder.Eventf(f.object, nil, corev1.EventTypeWarning, EventReasonUnservable, "CheckTLSReference", "%s: %s", f.verdict.Reason, f.verdict.Message)
	name := f.secret.Annotations[annotationCertificateName]
	if name == "" {
		return
	}
	var crt cmapi.Certificate
	if err := c.reader.Get(ctx, types.NamespacedName{Namespace: f.secret.Namespace, Name: name}, &crt); err != nil {
		return
	}
	c.recorder.Eventf(&crt, f.object.(runtime.Object), corev1.EventTypeWarning, EventReasonUnservable, "CheckTLSReference", "%s: %s", f.verdict.Reason, f.verdict.Message)
}
