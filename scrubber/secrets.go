// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
)

// Custody Secrets come in two types (custody.IsCustodySecretType), and an
// informer's field selector matches one value, so they are cached twice: the
// manager's cache holds kubernetes.io/tls Secrets (TLSSecretsByObject), a
// second cache the SDS reference Secrets (SDSSecretsByObject). Both keep
// every other Secret out of memory. SecretReader reads the two as one.

// TLSSecretsByObject is how the custody components cache kubernetes.io/tls
// Secrets: that type only (the field selector keeps every other Secret out
// of memory), without managedFields, with the data of Secrets that are
// not cert-manager's dropped (they are never scrubbed, so their keys have no
// business in this process), and without ca.crt in cert-manager's Secrets
// that hold no key (placeholders): nothing reads it from the cache (the
// webhook plans on the admitted object, the watcher on a live read, the
// guard checks tls.crt), and it is a large share of each placeholder.
func TLSSecretsByObject() cache.ByObject { return secretsOfType(corev1.SecretTypeTLS) }

// SDSSecretsByObject is TLSSecretsByObject for custody.SecretTypeSDS.
func SDSSecretsByObject() cache.ByObject { return secretsOfType(custody.SecretTypeSDS) }

func secretsOfType(t corev1.SecretType) cache.ByObject {
	return cache.ByObject{
		Field: fields.OneTermEqualSelector("type", string(t)),
		Transform: func(o any) (any, error) {
			if s, ok := o.(*corev1.Secret); ok {
				s.ManagedFields = nil
				switch {
				case !InScope(s):
					s.Data, s.StringData = nil, nil
				case !HoldsKeyMaterial(s):
					delete(s.Data, custody.DataCA)
				}
			}
			return o, nil
		},
	}
}

// CertificatesByObject is how Keyward caches cert-manager Certificates:
// metadata and spec. The custody components read a cached Certificate for
// its identity (the events about it) and spec.privateKey (the
// rotation-policy warning), revocation for whether it still exists; the
// guard decides on the Certificates in its admission request, never on the
// cache. So status, managedFields and kubectl's last-applied copy of the
// whole object are dropped. A cached Certificate is for reading only:
// never write it back whole.
func CertificatesByObject() cache.ByObject {
	return cache.ByObject{Transform: func(o any) (any, error) {
		if crt, ok := o.(*cmapi.Certificate); ok {
			crt.ManagedFields = nil
			crt.Status = cmapi.CertificateStatus{}
			delete(crt.Annotations, corev1.LastAppliedConfigAnnotation)
		}
		return o, nil
	}}
}

// NewSDSSecretCache creates the cache of custody.SecretTypeSDS Secrets and
// adds it to mgr (which starts it).
func NewSDSSecretCache(mgr ctrl.Manager) (cache.Cache, error) {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:   mgr.GetScheme(),
		Mapper:   mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: SDSSecretsByObject()},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the %s secret cache: %w", custody.SecretTypeSDS, err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the %s secret cache to the manager: %w", custody.SecretTypeSDS, err)
	}
	return c, nil
}

// SecretReader is a client.Reader over both custody Secret caches: a Secret
// Get asks Main and, when Main does not hold it, SDS; a SecretList is the
// concatenation of both. Every other object is read from Main alone.
type SecretReader struct {
	Main client.Reader
	SDS  client.Reader
}

var _ client.Reader = SecretReader{}

// Get implements client.Reader.
func (r SecretReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := r.Main.Get(ctx, key, obj, opts...)
	if _, isSecret := obj.(*corev1.Secret); !isSecret || r.SDS == nil || !apierrors.IsNotFound(err) {
		return err
	}
	return r.SDS.Get(ctx, key, obj, opts...)
}

// List implements client.Reader.
func (r SecretReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := r.Main.List(ctx, list, opts...); err != nil {
		return err
	}
	secrets, isSecrets := list.(*corev1.SecretList)
	if !isSecrets || r.SDS == nil {
		return nil
	}
	var more corev1.SecretList
	if err := r.SDS.List(ctx, &more, opts...); err != nil {
		return err
	}
	secrets.Items = append(secrets.Items, more.Items...)
	return nil
}
