package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmespath/go-jmespath"
	"sigs.k8s.io/yaml"
)

// Output formats of the admin verbs, as az's --output.
var outputFormats = []string{"json", "jsonc", "yaml", "table", "tsv", "none"}

// printer renders an admin result as az does: --query (JMESPath, the
// original specification that az's Python jmespath implements, through
// github.com/jmespath/go-jmespath) then --output.
type printer struct {
	format string
	query  string
}

// tableView is the table a verb shows when no --query is given, as az's
// table transformers pick columns for some commands (role assignment list:
// Principal, Role, Scope).
type tableView struct {
	cols []string
	rows [][]string
}

func (p *printer) validate() error {
	for _, f := range outputFormats {
		if p.format == f {
			if p.query != "" {
				if _, err := jmespath.Compile(p.query); err != nil {
					return fmt.Errorf("--query %q: %v", p.query, err)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("--output %q: want one of %s", p.format, strings.Join(outputFormats, ", "))
}

// print renders v, a plain JSON value (maps, slices, strings, float64,
// bools, nil) or anything encoding/json turns into one.
func (p *printer) print(w io.Writer, v any) error { return p.printView(w, v, nil) }

// printView is print with the verb's own table columns, used for -o table
// without --query.
func (p *printer) printView(w io.Writer, v any, view func() tableView) error {
	if err := p.validate(); err != nil {
		return err
	}
	val, err := plain(v)
	if err != nil {
		return err
	}
	if p.query != "" {
		if val, err = jmespath.Search(p.query, val); err != nil {
			return fmt.Errorf("--query %q: %v", p.query, err)
		}
	}
	var out []byte
	switch p.format {
	case "none":
		return nil
	case "json", "jsonc":
		out, err = marshalJSON(val)
		if err == nil && p.format == "jsonc" {
			out = colorJSON(out)
		}
	case "yaml":
		if val == nil {
			out = []byte("null\n")
			break
		}
		out, err = yaml.Marshal(val)
	case "table":
		if view != nil && p.query == "" {
			tv := view()
			out = renderTable(tv.cols, tv.rows)
			break
		}
		out = table(val, hashKeys(p.query))
	case "tsv":
		out = tsv(val, hashKeys(p.query))
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// plain turns v into plain JSON values, so queries and formats see what
// JSON would.
func plain(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	return unNumber(out), nil
}

// unNumber turns json.Number into float64, the number jmespath compares;
// output formats print integers without an exponent.
func unNumber(v any) any {
	switch val := v.(type) {
	case json.Number:
		if i, err := val.Int64(); err == nil {
			return float64(i)
		}
		f, _ := val.Float64()
		return f
	case map[string]any:
		for k, e := range val {
			val[k] = unNumber(e)
		}
	case []any:
		for i, e := range val {
			val[i] = unNumber(e)
		}
	}
	return v
}

// marshalJSON indents by two spaces with sorted keys, as az does, and
// leaves <, > and & as they are.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ANSI colours of jsonc: keys, strings, and other scalars.
const (
	colorKey    = "\x1b[94m"
	colorString = "\x1b[32m"
	colorScalar = "\x1b[33m"
	colorReset  = "\x1b[0m"
)

// colorJSON colours indented JSON as az's jsonc does.
func colorJSON(in []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(in) && in[j] != '"' {
				if in[j] == '\\' {
					j++
				}
				j++
			}
			j++ // the closing quote
			k := j
			for k < len(in) && in[k] == ' ' {
				k++
			}
			color := colorString
			if k < len(in) && in[k] == ':' {
				color = colorKey
			}
			out.WriteString(color)
			out.Write(in[i:j])
			out.WriteString(colorReset)
			i = j
		case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
			j := i
			for j < len(in) && !strings.ContainsRune(",]} \n", rune(in[j])) {
				j++
			}
			out.WriteString(colorScalar)
			out.Write(in[i:j])
			out.WriteString(colorReset)
			i = j
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.Bytes()
}

// scalarText renders a scalar as az's table and tsv do (Python's str:
// True, False, and nothing for null); ok is false for objects and lists,
// which those formats leave out.
func scalarText(v any) (string, bool) {
	switch val := v.(type) {
	case nil:
		return "", true
	case bool:
		if val {
			return "True", true
		}
		return "False", true
	case string:
		return val, true
	case float64:
		return strconv.FormatFloat(val, 'f', -1, 64), true
	}
	return "", false
}

// rows are the objects a table or tsv shows: a list's elements, or the
// value itself.
func rows(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

// hashKeys lists the keys of each multiselect hash of a query
// ({name:name, rg:resourceGroup}) in the order written: az keeps that
// order in table and tsv columns (its jmespath builds ordered dicts), which
// go-jmespath's maps do not.
func hashKeys(q string) [][]string {
	type frame struct {
		brace     bool
		keys      []string
		expectKey bool
	}
	var stack []*frame
	var out [][]string
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '\'', '`':
			j := i + 1
			for j < len(q) && q[j] != c {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			i = j
			continue
		case '{', '[', '(':
			stack = append(stack, &frame{brace: c == '{', expectKey: c == '{'})
			continue
		case '}', ']', ')':
			if n := len(stack); n > 0 {
				if top := stack[n-1]; top.brace {
					out = append(out, top.keys)
				}
				stack = stack[:n-1]
			}
			continue
		case ',':
			if n := len(stack); n > 0 && stack[n-1].brace {
				stack[n-1].expectKey = true
			}
			continue
		}
		n := len(stack)
		if n == 0 || !stack[n-1].expectKey || c == ' ' {
			if c == '"' { // a quoted identifier outside a key
				for i++; i < len(q) && q[i] != '"'; i++ {
					if q[i] == '\\' {
						i++
					}
				}
			}
			continue
		}
		// A key: an identifier or a quoted one, then a colon.
		j := i
		var key string
		if c == '"' {
			for j = i + 1; j < len(q) && q[j] != '"'; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			if k, err := strconv.Unquote(q[i:min(j+1, len(q))]); err == nil {
				key = k
			}
			j++
		} else {
			for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			key = q[i:j]
		}
		for j < len(q) && q[j] == ' ' {
			j++
		}
		if j < len(q) && q[j] == ':' {
			stack[n-1].keys = append(stack[n-1].keys, key)
			stack[n-1].expectKey = false
			i = j
		}
	}
	return out
}

// ordered returns the keys of m in the order of the query's multiselect
// hash that made it, or sorted.
func ordered(m map[string]any, orders [][]string) []string {
	for _, o := range orders {
		if len(o) != len(m) {
			continue
		}
		all := true
		for _, k := range o {
			if _, ok := m[k]; !ok {
				all = false
				break
			}
		}
		if all {
			return o
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// columns are the scalar fields of the rows, in the query's order or
// sorted.
func columns(rs []any, orders [][]string) []string {
	if len(rs) > 0 {
		if m, ok := rs[0].(map[string]any); ok {
			var cols []string
			for _, k := range ordered(m, orders) {
				if _, scalar := scalarText(m[k]); scalar {
					cols = append(cols, k)
				}
			}
			if len(rs) == 1 || len(orders) > 0 {
				return cols
			}
		}
	}
	return sortedColumns(rs)
}

func sortedColumns(rs []any) []string {
	seen := map[string]bool{}
	var cols []string
	for _, r := range rs {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		for k, v := range m {
			if _, scalar := scalarText(v); scalar && !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	sort.Strings(cols)
	return cols
}

// table renders az's table: one column per scalar field, headed by its
// name capitalised, under a line of dashes; nested objects and lists are
// left out; a scalar or a list of scalars is one column named Result.
func table(v any, orders [][]string) []byte {
	rs := rows(v)
	cols := columns(rs, orders)
	var header []string
	var cells [][]string
	if len(cols) == 0 {
		header = []string{"Result"}
		for _, r := range rs {
			if s, ok := scalarText(r); ok {
				cells = append(cells, []string{s})
			}
		}
	} else {
		for _, c := range cols {
			header = append(header, strings.ToUpper(c[:1])+c[1:])
		}
		for _, r := range rs {
			m, _ := r.(map[string]any)
			row := make([]string, len(cols))
			for i, c := range cols {
				row[i], _ = scalarText(m[c])
			}
			cells = append(cells, row)
		}
	}
	return renderTable(header, cells)
}

// renderTable aligns columns two spaces apart under a line of dashes.
func renderTable(header []string, cells [][]string) []byte {
	if len(cells) == 0 {
		return nil
	}
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	line := func(fields []string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == len(fields)-1 {
				b.WriteString(f)
			} else {
				b.WriteString(f + strings.Repeat(" ", width[i]-utf8.RuneCountInString(f)))
			}
		}
		b.WriteByte('\n')
	}
	line(header)
	dashes := make([]string, len(header))
	for i := range header {
		dashes[i] = strings.Repeat("-", width[i])
	}
	line(dashes)
	for _, row := range cells {
		line(row)
	}
	return b.Bytes()
}

// tsv renders az's tsv: a row's scalar fields tab-separated, in sorted
// field order, one line per row, no header.
func tsv(v any, orders [][]string) []byte {
	rs := rows(v)
	var b bytes.Buffer
	for _, r := range rs {
		m, ok := r.(map[string]any)
		if !ok {
			if s, scalar := scalarText(r); scalar {
				b.WriteString(s + "\n")
			}
			continue
		}
		var fields []string
		for _, k := range ordered(m, orders) {
			if s, scalar := scalarText(m[k]); scalar {
				fields = append(fields, s)
			}
		}
		b.WriteString(strings.Join(fields, "\t") + "\n")
	}
	return b.Bytes()
}
