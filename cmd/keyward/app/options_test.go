// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
)

func validOptions() *Options {
	o := NewOptions()
	o.VaultAddr = "https://vault.example.com:8200"
	return o
}

func TestValidateNamesTheBadField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(*Options)
		want   string // substring of the error; "" means valid
	}{
		{"defaults with a vault address", func(*Options) {}, ""},
		{"custody without vault", func(o *Options) { o.VaultAddr = "" }, "vaultAddr: required"},
		{"vault address not a URL", func(o *Options) { o.VaultAddr = "vault:8200" }, "vaultAddr:"},
		{"issuer only needs no vault address", func(o *Options) { o.VaultAddr = ""; o.EnableCustody = false }, ""},
		{"bad port", func(o *Options) { o.WebhookPort = 70000 }, "webhookPort"},
		{"nested custody mount", func(o *Options) { o.CustodyMount = "a/b" }, "custodyMount"},
		{"too many versions", func(o *Options) { o.CustodyMaxVersions = 0 }, "custodyMaxVersions"},
		{"write timeout beyond the webhook's", func(o *Options) { o.CustodyWriteTimeout = time.Minute }, "custodyWriteTimeout"},
		{"negative audit period", func(o *Options) { o.CustodyAuditPeriod = -time.Second }, "custodyAuditPeriod"},
		{"unknown log format", func(o *Options) { o.LogFormat = "xml" }, "logFormat"},
		{"memory limit ratio above 1", func(o *Options) { o.MemoryLimitRatio = 1.5 }, "memoryLimitRatio"},
		{"bad watch namespace", func(o *Options) { o.WatchNamespaces = []string{"a", ""} }, "watchNamespaces"},
		{"watch list", func(o *Options) { o.WatchNamespaces = []string{"a", "b"} }, ""},
		{"no cluster resource namespace", func(o *Options) { o.ClusterResourceNamespace = "" }, "clusterResourceNamespace"},
		{"cluster name", func(o *Options) { o.ClusterName = "prod-eu-1" }, ""},
		{"cluster name not a DNS label", func(o *Options) { o.ClusterName = "Prod/EU" }, "clusterName"},
		{"adoption", func(o *Options) { o.ClusterName = "west"; o.VaultAdoptRole = "keyward-adopter" }, ""},
		{"adoption without a cluster name", func(o *Options) { o.VaultAdoptRole = "keyward-adopter" }, "vaultAdoptRole"},
		{"unknown store", func(o *Options) { o.CustodyStore = "s3" }, "custodyStore"},
		{"aws store needs no vault", func(o *Options) { o.CustodyStore = StoreAWS; o.AWSRegion = "eu-west-1"; o.VaultAddr = "" }, ""},
		{"aws store without a region", func(o *Options) { o.CustodyStore = StoreAWS }, "awsRegion"},
		{"gcp store without a project", func(o *Options) { o.CustodyStore = StoreGCP }, "gcpProject"},
		{"azure store with a plain-http URL", func(o *Options) { o.CustodyStore = StoreAzure; o.AzureVaultURL = "http://kv" }, "azureVaultURL"},
		{"adoption on a cloud store", func(o *Options) {
			o.CustodyStore, o.GCPProject, o.ClusterName, o.VaultAdoptRole = StoreGCP, "p", "west", "keyward-adopter"
		}, "adoption reads Vault records"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := validOptions()
			tc.mutate(o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

func TestCompleteConfigFileAndFlagsWin(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keyward.yaml")
	if err := os.WriteFile(file, []byte("vaultAddr: https://from-file:8200\ncustodyMount: kv-file\ncustodyAuditPeriod: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--config=" + file, "--custody-mount=kv-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(fs); err != nil {
		t.Fatal(err)
	}
	if o.VaultAddr != "https://from-file:8200" || o.CustodyAuditPeriod != 30*time.Second {
		t.Errorf("file values not applied: %+v", o)
	}
	if o.CustodyMount != "kv-flag" {
		t.Errorf("explicit flag must win over the file, got custodyMount %q", o.CustodyMount)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("vaultAdress: typo\n"), 0o600)
	o = NewOptions()
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	_ = fs.Parse([]string{"--config=" + bad})
	if err := o.Complete(fs); err == nil || !strings.Contains(err.Error(), "vaultAdress") {
		t.Errorf("an unknown field in the config file must be named, got %v", err)
	}
}

// TestChartArgsParse renders the Helm chart (default and all-options values)
// with bin/helm and parses the keyward container's args with this binary's
// own flag set: a flag the chart passes but the binary lacks fails here.
func TestChartArgsParse(t *testing.T) {
	bin, err := framework.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm := filepath.Join(bin, "helm")
	for _, values := range []string{"", filepath.Join(root, "deploy", "test", "testdata", "all-options.yaml")} {
		args := []string{"template", "keyward", filepath.Join(root, "deploy", "charts", "keyward"), "--namespace", "keyward-system", "--kube-version", "1.36.3",
			"-f", filepath.Join(root, "deploy", "test", "testdata", "cluster-name.yaml")}
		if values != "" {
			args = append(args, "-f", values)
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm %v: %v\n%s", args, err, out)
		}
		found := false
		dec := utilyaml.NewYAMLReader(bufioReader(out))
		for {
			doc, err := dec.Read()
			if err != nil {
				break
			}
			if !bytes.Contains(doc, []byte("kind: Deployment")) {
				continue
			}
			var d appsv1.Deployment
			if err := yaml.Unmarshal(doc, &d); err != nil {
				t.Fatal(err)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				if c.Name != "keyward" {
					continue
				}
				found = true
				o := NewOptions()
				fs := pflag.NewFlagSet("keyward", pflag.ContinueOnError)
				o.AddFlags(fs)
				// all-options.yaml also exercises the chart's extraArgs with a
				// made-up flag; that one is the user's business, not the chart's.
				var chartArgs []string
				for _, a := range c.Args {
					if !strings.HasPrefix(a, "--extra-test-flag") {
						chartArgs = append(chartArgs, a)
					}
				}
				if err := fs.Parse(chartArgs); err != nil {
					t.Fatalf("values %q: chart passes args the binary rejects: %v (args %v)", values, err, c.Args)
				}
				if o.VaultAddr == "" {
					o.VaultAddr = "https://vault.example.com"
				}
				if err := o.Validate(); err != nil {
					t.Errorf("values %q: chart args do not validate: %v", values, err)
				}
			}
		}
		if !found {
			t.Fatalf("values %q: no keyward container rendered", values)
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// TestMaxVersionsBoundsMatchTheStore checks that --custody-max-versions
// accepts exactly what the Vault KV store accepts, so a value that passes
// validation never makes Keyward fail at start.
func TestMaxVersionsBoundsMatchTheStore(t *testing.T) {
	t.Parallel()
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for v := -1; v <= vaultkv.MaxVersionsLimit+2; v++ {
		o := validOptions()
		o.CustodyMaxVersions = v
		flagOK := o.Validate() == nil
		_, storeErr := vaultkv.New(c, vaultkv.Options{MaxVersions: v})
		// The store reads 0 as "default"; the flag has no such value.
		storeOK := storeErr == nil && v != 0
		if flagOK != storeOK {
			t.Errorf("max versions %d: flag accepts %v, store accepts %v", v, flagOK, storeOK)
		}
	}
	if o := validOptions(); o.Validate() != nil || o.CustodyMaxVersions != vaultkv.DefaultMaxVersions {
		t.Errorf("default max versions %d, store default %d", o.CustodyMaxVersions, vaultkv.DefaultMaxVersions)
	}
}
