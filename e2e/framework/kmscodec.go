// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmsservice "k8s.io/kms/pkg/service"
)

// etcdCodec reads and writes etcd values the way the apiserver does when
// Secrets are encrypted at rest: through the apiserver's own KMS v2 envelope
// transformer (k8s.io/apiserver), talking to the same plugin socket. The
// raw scans of what is at rest (custody's "no key in any revision") then
// still see the Secret's content, and a test can plant a Secret in etcd
// that the apiserver can read.
type etcdCodec struct {
	mu     sync.Mutex
	plugin *KMSPlugin
	svc    kmsservice.Service
	reader value.Transformer // decrypts: asks the plugin to Decrypt each new DEK seed, once
	writer value.Transformer // encrypts with a DEK seed of its own (one Encrypt)
	cancel context.CancelFunc
}

// close drops the codec's connection to the plugin.
func (c *etcdCodec) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}

// transformers connects to the plugin on first use.
func (c *etcdCodec) transformers() (reader, writer value.Transformer, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader != nil {
		return c.reader, c.writer, nil
	}
	// The connection lives as long as the codec (closed by close), not as
	// long as the first caller's context.
	var connCtx context.Context
	connCtx, c.cancel = context.WithCancel(context.Background())
	if c.svc, err = kmsv2.NewGRPCService(connCtx, "unix://"+c.plugin.Socket, KMSProviderName, 5*time.Second); err != nil {
		return nil, nil, fmt.Errorf("connecting to the KMS plugin: %w", err)
	}
	// Reads need no write state: nothing is encrypted on the read path.
	c.reader = kmsv2.NewEnvelopeTransformer(c.svc, KMSProviderName, func() (kmsv2.State, error) { return kmsv2.State{}, nil }, "keyward-e2e")
	var once sync.Once
	var state kmsv2.State
	var stateErr error
	c.writer = kmsv2.NewEnvelopeTransformer(c.svc, KMSProviderName, func() (kmsv2.State, error) {
		once.Do(func() {
			uid := string(uuid.NewUUID())
			tf, obj, cacheKey, err := kmsv2.GenerateTransformer(context.Background(), uid, c.svc, true)
			if err != nil {
				stateErr = err
				return
			}
			state = kmsv2.State{
				Transformer: tf, EncryptedObjectKeyID: obj.KeyID, EncryptedObjectEncryptedDEKSource: obj.EncryptedDEKSource,
				EncryptedObjectAnnotations: obj.Annotations, EncryptedObjectEncryptedDEKSourceType: obj.EncryptedDEKSourceType,
				UID: uid, ExpirationTimestamp: time.Now().Add(24 * time.Hour), CacheKey: cacheKey, KMSProviderName: KMSProviderName,
			}
		})
		return state, stateErr
	}, "keyward-e2e")
	return c.reader, c.writer, nil
}

// decode returns the plaintext of an etcd value stored under key.
func (c *etcdCodec) decode(ctx context.Context, key string, v []byte) ([]byte, error) {
	if c == nil || !bytes.HasPrefix(v, []byte(KMSPrefix)) {
		return v, nil
	}
	tf, _, err := c.transformers()
	if err != nil {
		return nil, err
	}
	out, _, err := tf.TransformFromStorage(ctx, v[len(KMSPrefix):], value.DefaultContext(key))
	if err != nil {
		return nil, fmt.Errorf("decrypting %s: %w", key, err)
	}
	return out, nil
}

// encode encrypts a value for key as the apiserver would store it.
func (c *etcdCodec) encode(ctx context.Context, key string, plain []byte) ([]byte, error) {
	if c == nil {
		return plain, nil
	}
	_, tf, err := c.transformers()
	if err != nil {
		return nil, err
	}
	out, err := tf.TransformToStorage(ctx, plain, value.DefaultContext(key))
	if err != nil {
		return nil, fmt.Errorf("encrypting %s: %w", key, err)
	}
	return append([]byte(KMSPrefix), out...), nil
}

// prime decrypts the apiserver's current DEK seed into the reader's cache
// (through a probe Secret written and deleted again), so scans keep working
// while Vault is away, as the apiserver's own reads do, until the apiserver
// restarts or the Transit key rotates.
func (c *etcdCodec) prime(ctx context.Context, e *Env) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keyward-kms-probe", Namespace: metav1.NamespaceDefault}, StringData: map[string]string{"probe": "1"}}
	if _, err := e.Kubernetes.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("writing the KMS probe Secret: %w", err)
	}
	revs, err := e.EtcdHistory(ctx, "/registry/secrets/default/keyward-kms-probe")
	if err != nil {
		return fmt.Errorf("reading the KMS probe Secret back from etcd: %w", err)
	}
	if len(revs) == 0 || !bytes.Contains(revs[len(revs)-1].Value, []byte("probe")) {
		return errors.New("the KMS probe Secret did not decrypt")
	}
	return e.Kubernetes.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
}
