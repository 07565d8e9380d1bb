package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// mutant is one change at one site: bytes [start, end) of file become to.
type mutant struct {
	pkg        string // the package directory whose tests judge it, e.g. ./authz/token
	file       string // the file, relative to the module root
	line, col  int
	op         string
	start, end int
	from, to   string
}

func (m mutant) site() string { return m.file + ":" + strconv.Itoa(m.line) }

func (m mutant) apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(m.to))
	out = append(out, src[:m.start]...)
	out = append(out, m.to...)
	return append(out, src[m.end:]...)
}

// goMutants lists the mutants of one Go source file.
func goMutants(pkg, file string, src []byte) ([]mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, 0)
	if err != nil {
		return nil, err
	}
	var out []mutant
	add := func(pos, end token.Pos, op, to string) {
		p, e := fset.Position(pos), fset.Position(end)
		out = append(out, mutant{pkg: pkg, file: file, line: p.Line, col: p.Column, op: op,
			start: p.Offset, end: e.Offset, from: string(src[p.Offset:e.Offset]), to: to})
	}
	swap := map[token.Token]struct{ op, to string }{
		token.EQL:  {"EQ_TO_NE", "!="},
		token.NEQ:  {"NE_TO_EQ", "=="},
		token.LSS:  {"BOUNDARY", "<="},
		token.LEQ:  {"BOUNDARY", "<"},
		token.GTR:  {"BOUNDARY", ">="},
		token.GEQ:  {"BOUNDARY", ">"},
		token.LAND: {"AND_TO_OR", "||"},
		token.LOR:  {"OR_TO_AND", "&&"},
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if s, ok := swap[x.Op]; ok {
				add(x.OpPos, x.OpPos+token.Pos(len(x.Op.String())), s.op, s.to)
			}
		case *ast.UnaryExpr:
			if x.Op == token.NOT {
				add(x.OpPos, x.OpPos+1, "NOT_REMOVED", "")
			}
		case *ast.Ident:
			if x.Obj == nil && (x.Name == "true" || x.Name == "false") {
				to := "true"
				if x.Name == "true" {
					to = "false"
				}
				add(x.Pos(), x.End(), "BOOL_FLIPPED", to)
			}
		case *ast.IfStmt:
			if exits(x.Body) {
				add(x.Cond.Pos(), x.Cond.End(), "GUARD_DROPPED", "false")
			}
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && len(x.Args) == 2 {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "strings" && sel.Sel.Name == "EqualFold" {
					a := string(src[fset.Position(x.Args[0].Pos()).Offset:fset.Position(x.Args[0].End()).Offset])
					b := string(src[fset.Position(x.Args[1].Pos()).Offset:fset.Position(x.Args[1].End()).Offset])
					add(x.Pos(), x.End(), "EQUALFOLD_TO_EQ", "(("+a+") == ("+b+"))")
				}
			}
		}
		return true
	})
	return out, nil
}

// exits reports whether a block returns, continues or breaks at its top
// level: an if with such a body is a guard.
func exits(b *ast.BlockStmt) bool {
	for _, s := range b.List {
		switch s := s.(type) {
		case *ast.ReturnStmt:
			return true
		case *ast.BranchStmt:
			if s.Tok == token.CONTINUE || s.Tok == token.BREAK {
				return true
			}
		}
	}
	return false
}

// regoMutants lists the mutants of one Rego policy file, line by line.
func regoMutants(pkg, file string, src []byte) []mutant {
	var out []mutant
	off := 0
	depth := 0 // brace depth at the start of the line
	for n, line := range strings.SplitAfter(string(src), "\n") {
		body := strings.TrimRight(line, "\n")
		trim := strings.TrimSpace(body)
		add := func(i, j int, op, to string) {
			out = append(out, mutant{pkg: pkg, file: file, line: n + 1, col: i + 1, op: op,
				start: off + i, end: off + j, from: body[i:j], to: to})
		}
		code, _, _ := strings.Cut(body, "#")
		if trim != "" && !strings.HasPrefix(trim, "#") {
			for i := 0; i+1 < len(code); i++ {
				switch code[i : i+2] {
				case "==":
					add(i, i+2, "EQ_TO_NE", "!=")
				case "!=":
					add(i, i+2, "NE_TO_EQ", "==")
				}
			}
			if strings.HasPrefix(trim, "not ") {
				i := strings.Index(body, "not ")
				add(i, i+4, "NOT_REMOVED", "")
			}
			// One condition of a rule body: a line one tab deep inside a
			// block, not a binding, not part of a literal spanning lines.
			if depth == 1 && strings.HasPrefix(body, "\t") && !strings.HasPrefix(body, "\t\t") &&
				!strings.ContainsAny(trim[len(trim)-1:], ",{[(") && trim != "}" && !strings.HasPrefix(trim, "}") &&
				!strings.Contains(code, ":=") && !strings.HasPrefix(trim, "some ") && !strings.HasPrefix(trim, "every ") {
				add(1, len(body), "CONDITION_DROPPED", "true")
			}
		}
		depth += strings.Count(code, "{") - strings.Count(code, "}")
		off += len(line)
	}
	return out
}
