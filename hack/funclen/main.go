// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command funclen lists the longest functions of Keyward's product code
// (tests, generated code, e2e and hack excluded), from the first line of
// the declaration to its closing brace, and exits 1 if one is longer than
// -max lines. Usage: go run ./hack/funclen [-max 85] [-top 10] [dir].
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	lines int
	name  string
}

func main() {
	limit := flag.Int("max", 85, "longest function allowed, in lines")
	top := flag.Int("top", 10, "how many of the longest to print")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	fns, err := measure(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	over := 0
	for i, f := range fns {
		if i < *top {
			fmt.Printf("%4d %s\n", f.lines, f.name)
		}
		if f.lines > *limit {
			over++
		}
	}
	if over > 0 {
		fmt.Fprintf(os.Stderr, "%d product functions are longer than %d lines\n", over, *limit)
		os.Exit(1)
	}
}

// measure returns every product function under root, longest first.
func measure(root string) ([]fn, error) {
	var out []fn
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch {
			case rel == "hack", rel == "e2e", rel == "bin", rel != "." && strings.HasPrefix(d.Name(), "."), d.Name() == "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.HasPrefix(d.Name(), "zz_generated") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Body != nil {
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				out = append(out, fn{n, rel + ":" + fd.Name.Name})
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].lines > out[j].lines })
	return out, err
}
