package vaultwall_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/ops/metrics"
)

const root = "."

// logMessages are the messages of every log/slog call in the product's
// source: x.Info/Warn/Error/Debug("msg", …), their …Context(ctx, "msg", …)
// forms, and x.Log/LogAttrs(ctx, level, "msg", …). Tests, the end-to-end
// and benchmark harnesses and the build tools (deploy/, cmd/mutate,
// cmd/schemagen) and the test kits (authztest, opstest, servertest…) are
// not the product.
func logMessages(t *testing.T) map[string][]string {
	t.Helper()
	msgIndex := map[string]int{"Info": 0, "Warn": 0, "Error": 0, "Debug": 0,
		"InfoContext": 1, "WarnContext": 1, "ErrorContext": 1, "DebugContext": 1, "Log": 2, "LogAttrs": 2}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "bin", "e2e", "bench", "deploy", "cmd/mutate", "cmd/schemagen", "docs", "proto", "controlplane/api":
				return filepath.SkipDir
			}
			if strings.HasSuffix(d.Name(), "test") { // test kits (authztest, servertest…): t.Error, not a log
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := msgIndex[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			msg, err := strconv.Unquote(lit.Value)
			if err == nil {
				out[msg] = append(out[msg], fset.Position(lit.Pos()).String())
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d log messages: the scan is broken", len(out))
	}
	return out
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTroubleshootingNamesEveryLogMessage: each message vaultwall logs is on
// the troubleshooting page, written as `message`.
func TestTroubleshootingNamesEveryLogMessage(t *testing.T) {
	page := read(t, "troubleshooting.md")
	msgs := logMessages(t)
	var missing []string
	for msg, where := range msgs {
		if !strings.Contains(page, "`"+msg+"`") {
			missing = append(missing, msg+" ("+where[0]+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("troubleshooting.md does not explain the log message %s", m)
	}
}

// TestTroubleshootingNamesEveryCode: each result code vaultwall counts (and
// answers with) has its entry.
func TestTroubleshootingNamesEveryCode(t *testing.T) {
	page := read(t, "troubleshooting.md")
	for _, code := range metrics.Codes {
		if code == "OK" {
			continue
		}
		if !strings.Contains(page, "`"+code+"`") {
			t.Errorf("troubleshooting.md does not explain the code %s", code)
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestMarkdownLinksStayInside: every relative link of the repository's
// Markdown points at a file or directory inside the repository.
func TestMarkdownLinksStayInside(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "bin" || n == "node_modules" || n == ".bench" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".md") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "#") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			checked++
			target, _, _ := strings.Cut(link, "#")
			abs, err := filepath.Abs(filepath.Join(filepath.Dir(p), target))
			if err != nil {
				return err
			}
			if rel, err := filepath.Rel(absRoot, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", p, link)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: link %q: %v", p, link, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no relative links found: the scan is broken")
	}
}
