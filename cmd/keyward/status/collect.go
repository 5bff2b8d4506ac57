// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package status

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/internal/vault"
)

// clients are what status reads with.
type clients struct {
	certs    cmclient.Interface
	kube     kubernetes.Interface
	metadata metadata.Interface
	// store is nil when Vault is not checked.
	store     *vaultkv.Store
	namespace string // "" with -A
}

// connect builds the clients from the kubeconfig and the Vault settings.
func connect(o *Options) (*clients, error) {
	cc := o.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig (--kubeconfig, else KUBECONFIG, else ~/.kube/config): %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig namespace: %w", err)
	}
	if o.AllNamespaces {
		ns = ""
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "keyward-status"
	c := &clients{namespace: ns}
	if c.certs, err = cmclient.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("cert-manager client for %s: %w", cfg.Host, err)
	}
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	if c.metadata, err = metadata.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("metadata client for %s: %w", cfg.Host, err)
	}
	if o.VaultAddr == "" {
		return c, nil
	}
	var ca []byte
	if o.VaultCAFile != "" {
		if ca, err = os.ReadFile(o.VaultCAFile); err != nil {
			return nil, fmt.Errorf("reading --vault-ca-file: %w", err)
		}
	}
	vc, err := vault.NewClient(vault.Config{Server: o.VaultAddr, CABundle: ca, Timeout: o.Timeout})
	if err != nil {
		return nil, err
	}
	vc.SetToken(o.VaultToken)
	if c.store, err = vaultkv.New(vc, vaultkv.Options{Mount: o.CustodyMount, Prefix: custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName)}); err != nil {
		return nil, err
	}
	return c, nil
}

// certificates lists the selected Certificates, sorted by namespace and name.
func (c *clients) certificates(ctx context.Context, names []string) ([]cmapi.Certificate, error) {
	var out []cmapi.Certificate
	if len(names) == 0 {
		list, err := c.certs.CertmanagerV1().Certificates(c.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing Certificates%s: %w", inNamespace(c.namespace), err)
		}
		out = list.Items
	}
	for _, n := range names {
		crt, err := c.certs.CertmanagerV1().Certificates(c.namespace).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading Certificate %s/%s: %w", c.namespace, n, err)
		}
		out = append(out, *crt)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// secrets returns the target Secrets, keyed by namespace/name. Secrets are
// listed as metadata only (no data crosses the wire); a target that is not
// a placeholder is read whole, once, to tell whether its key is in the API
// and whether it is a TLS Secret, and reduced at once (ViewSecret).
func (c *clients) secrets(ctx context.Context, crts []cmapi.Certificate) (map[string]*SecretView, error) {
	list, err := c.metadata.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Secrets' metadata%s: %w", inNamespace(c.namespace), err)
	}
	byName := map[string]*metav1.PartialObjectMetadata{}
	for i := range list.Items {
		byName[list.Items[i].Namespace+"/"+list.Items[i].Name] = &list.Items[i]
	}
	out := map[string]*SecretView{}
	for _, crt := range crts {
		key := crt.Namespace + "/" + crt.Spec.SecretName
		m, ok := byName[key]
		if !ok || out[key] != nil {
			continue
		}
		if _, placeholder := custody.ParsePlaceholder(m); placeholder {
			v := ViewSecret(m, nil)
			out[key] = &v
			continue
		}
		full, err := c.kube.CoreV1().Secrets(crt.Namespace).Get(ctx, crt.Spec.SecretName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading Secret %s: %w", key, err)
		}
		v := ViewSecret(full, full)
		full.Data = nil
		out[key] = &v
	}
	return out, nil
}

// events returns the events about Certificates and Secrets, keyed by
// namespace/kind/name.
func (c *clients) events(ctx context.Context) (map[string][]Event, error) {
	list, err := c.kube.CoreV1().Events(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Events%s: %w", inNamespace(c.namespace), err)
	}
	out := map[string][]Event{}
	for _, e := range list.Items {
		o := e.InvolvedObject
		if o.Kind != cmapi.CertificateKind && o.Kind != "Secret" {
			continue
		}
		key := e.Namespace + "/" + o.Kind + "/" + o.Name
		out[key] = append(out[key], Event{
			Type: e.Type, Reason: e.Reason, Message: e.Message, Object: o.Kind + "/" + o.Name,
			Time: eventTime(&e), Count: eventCount(&e),
		})
	}
	return out, nil
}

// eventTime is when the event was last seen, whichever API wrote it.
func eventTime(e *corev1.Event) (t time.Time) {
	for _, c := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if c.After(t) {
			t = c
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	return t.UTC()
}

func eventCount(e *corev1.Event) int32 {
	if e.Series != nil {
		return e.Series.Count
	}
	return e.Count
}

// custodyRecord reads the current record's metadata (never its data),
// unless the placeholder names another path than this cluster's.
func (c *clients) custodyRecord(ctx context.Context, namespace, secret, placeholderPath string) (*StoreView, error) {
	if c.store == nil {
		return nil, nil
	}
	p := c.store.Path(namespace, secret)
	if placeholderPath != p {
		return &StoreView{Path: p}, nil
	}
	m, err := c.store.Metadata(ctx, namespace, secret)
	if errors.Is(err, custody.ErrNotFound) {
		return &StoreView{Path: p, Missing: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading custody metadata %s from Vault: %w", p, err)
	}
	return &StoreView{Path: p, Meta: m}, nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return " in namespace " + ns
}
