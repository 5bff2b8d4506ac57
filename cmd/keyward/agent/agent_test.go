// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
)

func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	o.Namespace = "default-ns"
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestValidate(t *testing.T) {
	ok := []string{"--secret", "web-tls", "--secret", "other/api-tls", "--vault-server", "https://vault:8200", "--sink", "files", "--files-dir", "/keys"}
	o := parse(t, ok...)
	if err := o.Validate(); err != nil {
		t.Fatalf("valid flags rejected: %v", err)
	}
	refs, _ := o.secretRefs()
	if want := []types.NamespacedName{{Namespace: "default-ns", Name: "web-tls"}, {Namespace: "other", Name: "api-tls"}}; len(refs) != 2 || refs[0] != want[0] || refs[1] != want[1] {
		t.Errorf("secret refs = %v, want %v", refs, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "at least one --secret"},
		{[]string{"--secret", "a/b/c"}, "is not NAMESPACE/NAME"},
		{[]string{"--sink", "nginx"}, `--sink "nginx": unknown`},
		{[]string{"--sink", "files"}, "--files-dir"},
		{[]string{"--sink", "files", "--files-dir", "/k", "--files-reload-signal", "KILL"}, "--files-reload-signal"},
		{[]string{"--sink", "files", "--sink", "files", "--files-dir", "/k"}, "given twice"},
		{[]string{"--log-format", "xml"}, "--log-format"},
	} {
		err := parse(t, tc.args...).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	o = parse(t, "--secret", "x", "--vault-server", "http://v", "--sink", "files", "--files-dir", "/k")
	o.Namespace = ""
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "no namespace") {
		t.Errorf("bare name without namespace: got %v", err)
	}
}
