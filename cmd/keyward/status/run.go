// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// Main parses args (flags and Certificate names after `status`) and runs,
// returning the exit code. name is the command as the user typed it, for
// messages ("keyward status" or "kubectl keyward status").
func Main(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	o := NewOptions()
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [NAME...] [flags]\n\n%s", name, Usage)
		fs.PrintDefaults()
	}
	o.AddFlags(fs)
	if err := o.Parse(fs, args); err != nil {
		if err == pflag.ErrHelp {
			return ExitOK
		}
		return ExitError
	}
	return Run(ctx, o, stdout, stderr)
}

// Run shows the status of the selected Certificates on stdout and returns
// the exit code (ExitOK, ExitProblems, ExitError); errors go to stderr,
// naming what could not be read.
func Run(ctx context.Context, o *Options, stdout, stderr io.Writer) int {
	if err := o.Validate(); err != nil {
		fmt.Fprintln(stderr, "keyward status: invalid usage:", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rows, err := collect(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "keyward status:", err)
		return ExitError
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Output == OutputJSON {
		err = WriteJSON(stdout, rows)
	} else {
		err = WriteTable(stdout, rows, now)
	}
	if err != nil {
		fmt.Fprintln(stderr, "keyward status: writing output:", err)
		return ExitError
	}
	if HasProblems(rows) {
		return ExitProblems
	}
	return ExitOK
}

// collect reads everything and builds the rows.
func collect(ctx context.Context, o *Options) ([]Row, error) {
	c, err := connect(o)
	if err != nil {
		return nil, err
	}
	crts, err := c.certificates(ctx, o.Names)
	if err != nil {
		return nil, err
	}
	if len(crts) == 0 {
		return nil, nil
	}
	secrets, err := c.secrets(ctx, crts)
	if err != nil {
		return nil, err
	}
	evs, err := c.events(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(crts))
	for i := range crts {
		crt := &crts[i]
		in := Input{Certificate: crt, Secret: secrets[crt.Namespace+"/"+crt.Spec.SecretName]}
		in.Events = append(evs[crt.Namespace+"/Certificate/"+crt.Name], evs[crt.Namespace+"/Secret/"+crt.Spec.SecretName]...)
		row := BuildRow(in)
		if row.Custody == CustodyInCustody {
			if in.Store, err = c.custodyRecord(ctx, crt.Namespace, crt.Spec.SecretName, row.CustodyPath); err != nil {
				return nil, err
			}
			row = BuildRow(in)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// List is the JSON document `-o json` writes.
type List struct {
	Items []Row `json:"items"`
	// Problems counts the rows with problems.
	Problems int `json:"problems"`
}

// WriteJSON writes rows as a List.
func WriteJSON(w io.Writer, rows []Row) error {
	l := List{Items: rows}
	if l.Items == nil {
		l.Items = []Row{}
	}
	for _, r := range rows {
		if len(r.Problems) > 0 {
			l.Problems++
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

// WriteTable writes one line per Certificate, then the problems, the
// guard's last decision and the warnings of each one that has any.
func WriteTable(w io.Writer, rows []Row, now time.Time) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No Certificates found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tREADY\tSECRET\tCUSTODY\tVERSION\tSTORE\tKEY\tSERIAL\tNOT AFTER\tRENEWAL\tGUARD")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Namespace, r.Name, ready(r), r.SecretName, r.Custody, version(r.CustodyVersion), store(r),
			short(r.KeySHA256, 12), short(r.Serial, 16), day(r.NotAfter), day(r.RenewalTime), guardColumn(r.Guard, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if len(r.Problems) == 0 && r.Guard == nil && len(r.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s/%s:\n", r.Namespace, r.Name)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  PROBLEM  %s\n", p)
		}
		if g := r.Guard; g != nil {
			fmt.Fprintf(w, "  guard    %s %s ago: %s: %s\n", g.Event, age(now, g.Time), g.Reason, g.Message)
		}
		for _, e := range r.Warnings {
			fmt.Fprintf(w, "  Warning  %s%s (%s, %s ago): %s\n", e.Reason, countText(e.Count), e.Object, age(now, e.Time), e.Message)
		}
	}
	_, err := fmt.Fprintf(w, "\n%d Certificate(s), %d with problems.\n", len(rows), countProblems(rows))
	return err
}

func countProblems(rows []Row) int {
	n := 0
	for _, r := range rows {
		if len(r.Problems) > 0 {
			n++
		}
	}
	return n
}

func ready(r Row) string {
	if r.ReadyReason == "" || r.Ready == "True" {
		return r.Ready
	}
	return r.Ready + "/" + r.ReadyReason
}

func version(v int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", v)
}

func store(r Row) string {
	if r.StoreVersion == 0 {
		return r.Store
	}
	return fmt.Sprintf("%s (v%d)", r.Store, r.StoreVersion)
}

func short(s string, n int) string {
	if s == "" {
		return "-"
	}
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func day(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04Z")
}

func guardColumn(g *Guard, now time.Time) string {
	if g == nil {
		return "-"
	}
	return fmt.Sprintf("%s/%s %s", strings.TrimPrefix(g.Event, "CustodyGuard"), g.Reason, age(now, g.Time))
}

func countText(n int32) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" x%d", n)
}

// age is a kubectl-style duration: 45s, 3m, 2h, 5d.
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "?"
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
