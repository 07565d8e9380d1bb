package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/vaultwall/vaultwall/authz/section"
)

// Load reads, parses and validates a configuration file. The error, if any,
// joins every problem found, each a *FieldError naming file, line and field.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates configuration bytes; name is used in messages
// and to resolve relative paths. The bytes are vaultwall's YAML (or JSON),
// an `az keyvault show` document (JSON or YAML), or an ARM template with one
// Microsoft.KeyVault/vaults resource (Format); Parse is a function of name
// and data alone.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

// ParseVault parses one vault's document of a multi-vault configuration
// (vaults.dir) onto the main file's process-wide sections: the result is
// the whole configuration that vault is decided by. The main file is
// parsed afresh from mainData, so no two vaults share anything mutable;
// its errors are returned as they are. The vault document holds vault,
// properties and network, and optionally trustedServices and policy, which
// replace the main file's field by field; any other section belongs in the
// main file and is refused. It may be any Format (an az keyvault show
// document, an ARM template). Errors name the vault's file and lines.
func ParseVault(mainName string, mainData []byte, name string, data []byte) (*Config, error) {
	base, err := Parse(mainName, mainData)
	if err != nil {
		return nil, err
	}
	if base.Vaults.Dir == "" {
		return nil, &FieldError{File: mainName, Field: "vaults.dir", Err: fmt.Errorf("%w: the main file serves no vaults directory", ErrRequired)}
	}
	base.Vaults = Vaults{}
	base.Vault, base.Properties, base.Network = Vault{}, Properties{}, Network{}
	return parse(name, data, base)
}

// vaultSections are the sections a vault's own document may hold.
var vaultSections = map[string]bool{"vault": true, "properties": true, "network": true,
	"trustedServices": true, "policy": true}

// vaultOnlySections belong to a vault's own file: the main file of a
// multi-vault configuration holds no vault of its own.
var vaultOnlySections = []string{"vault", "properties", "network"}

// parse is Parse, or with base the parse of a vault's document onto the
// process-wide sections of base (ParseVault).
func parse(name string, data []byte, base *Config) (*Config, error) {
	data = decodeText(data)
	src := &source{name: name, data: data}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, src.annotate(&FieldError{Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
	}
	var generic any
	if err := json.Unmarshal(jsonData, &generic); err != nil {
		return nil, src.annotate(&FieldError{Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
	}
	if generic == nil {
		generic = map[string]any{}
	}
	doc, ok := generic.(map[string]any)
	if !ok {
		return nil, src.annotate(&FieldError{Err: fmt.Errorf("%w: the document must be a mapping (az role assignment list output goes under properties.roleAssignments)", ErrType)})
	}
	norm := normalize(doc)
	if norm.fatal {
		return nil, src.annotateAll(norm.errs)
	}
	if jsonData, err = json.Marshal(norm.doc); err != nil {
		return nil, src.annotate(&FieldError{Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
	}
	var c errs
	unknownFields(&c, "", norm.doc, reflect.TypeOf(Config{}))

	cfg := &Config{}
	if base != nil {
		cfg = base
		for _, k := range slices.Sorted(maps.Keys(norm.doc)) {
			if !vaultSections[k] {
				c.Add(k, ErrConflict, "a vault's file holds only vault, properties, network, trustedServices and policy; %s is process-wide and belongs in the main file (%s)", k, filepath.Base(base.Path))
			}
		}
	} else if dir, _ := norm.doc["vaults"].(map[string]any); dir != nil && dir["dir"] != nil {
		for _, k := range vaultOnlySections {
			if _, ok := norm.doc[k]; ok {
				c.Add(k, ErrConflict, "with vaults.dir each vault is a file of that directory; the main file holds only process-wide sections")
			}
		}
	}
	cfg.Path, cfg.src, cfg.format, cfg.ignored, cfg.notes = name, src, norm.format, norm.ignored, nil
	baseCA, basePolicy := cfg.TrustedServices.CAFile, cfg.Policy.Dir
	decoded := true
	if err := json.Unmarshal(jsonData, cfg); err != nil {
		decoded = false
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			c.Add(typeErrorPath(norm.doc, te), ErrType, "got %s, want %s", te.Value, typeName(te.Type))
		} else {
			c.Add("", ErrType, "%v", err)
		}
	}
	if decoded && base != nil {
		// The main file's paths were resolved against it; only those the
		// vault's own document sets are relative to the vault's file.
		dir := filepath.Dir(name)
		for _, p := range []struct {
			now *string
			was string
		}{
			{&cfg.TrustedServices.CAFile, baseCA}, {&cfg.Policy.Dir, basePolicy},
		} {
			if *p.now != p.was && *p.now != "" && !filepath.IsAbs(*p.now) {
				*p.now = filepath.Join(dir, *p.now)
			}
		}
	} else if decoded {
		cfg.resolvePaths(name)
	}
	if decoded {
		cfg.defaults()
		cfg.validate(&c)
	}
	// Validation names vaultwall's fields; an Azure document's errors name
	// the document's own paths.
	src.rewrite = norm.docPath
	var all []error
	refused := map[string]bool{} // fields the format refused: their validation errors say less
	if len(norm.errs) > 0 {
		plain := &source{name: name, data: data}
		for _, e := range norm.errs {
			if fe, ok := e.(*FieldError); ok {
				refused[fe.Field] = true
			}
			all = append(all, plain.annotate(e))
		}
	}
	for _, e := range c {
		if fe, ok := e.(*FieldError); ok && refused[norm.docPath(fe.Field)] {
			continue
		}
		all = append(all, e)
	}
	if len(all) > 0 {
		return nil, src.annotateAll(all)
	}
	return cfg, nil
}

// SetProperties lays props over the vault properties of a document of any
// Format, where that format keeps them (properties, or the vault resource's
// properties in an ARM template), and returns the document as JSON in its
// own format. Layers that edit a configuration's properties (the control
// plane's overlay) use it, so an Azure document keeps its meaning under
// them.
func SetProperties(data []byte, props map[string]any) ([]byte, error) {
	jsonData, err := yaml.YAMLToJSON(decodeText(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(jsonData, &doc); err != nil {
		return nil, fmt.Errorf("%w: the document must be a mapping", ErrType)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	holder := doc
	if detect(doc) == FormatARMTemplate {
		holder = nil
		for _, r := range templateResources(doc) {
			if t, _ := r.m["type"].(string); strings.EqualFold(t, vaultType) {
				holder = r.m
				break
			}
		}
		if holder == nil {
			return nil, fmt.Errorf("resources: %w: the template has no Microsoft.KeyVault/vaults resource", ErrRequired)
		}
	}
	p, _ := holder["properties"].(map[string]any)
	if p == nil {
		p = map[string]any{}
	}
	for k, v := range props {
		p[k] = v
	}
	holder["properties"] = p
	return json.Marshal(doc)
}

// resolvePaths makes every file setting relative to the configuration
// file's directory, so a configuration means the same wherever vaultwall is
// started from.
func (c *Config) resolvePaths(name string) {
	dir := filepath.Dir(name)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Identity.Issuers {
		abs(&c.Identity.Issuers[i].JWKSFile)
		abs(&c.Identity.Issuers[i].CAFile)
	}
	abs(&c.TrustedServices.CAFile)
	abs(&c.Policy.Dir)
	abs(&c.Vaults.Dir)
	abs(&c.Server.TLS.CertFile)
	abs(&c.Server.TLS.KeyFile)
	abs(&c.Server.TLS.ClientCAFile)
	c.resolveControlPlanePaths(abs)
	c.resolveOpsPaths(abs)
}

// Annotate gives FieldErrors produced by later compile steps (stage
// packages) this configuration's file name and line numbers.
func (c *Config) Annotate(err error) error {
	if err == nil || c.src == nil {
		return err
	}
	return c.src.annotateAll(section.Flatten(err))
}

// typeErrorPath names the value a type error is about with its indices:
// encoding/json's Field ("properties.roleDefinitions.notDataActions") omits
// them, so the first value on that path, in the document's order, whose
// JSON kind is the one refused is taken. Field is kept when none is found.
func typeErrorPath(doc any, te *json.UnmarshalTypeError) string {
	kind, _, _ := strings.Cut(te.Value, " ") // "number 1e999" → number
	elem := te.Type != nil && te.Type.Kind() != reflect.Slice && te.Type.Kind() != reflect.Array
	var find func(v any, path string, keys []string) (string, bool)
	find = func(v any, path string, keys []string) (string, bool) {
		list, isList := v.([]any)
		switch {
		case len(keys) == 0 && isList && elem: // an entry of a list field
			for i, e := range list {
				if jsonKind(e) == kind {
					return path + "[" + strconv.Itoa(i) + "]", true
				}
			}
			return "", false
		case len(keys) == 0 && jsonKind(v) == kind:
			return path, true
		case len(keys) == 0: // encoding/json names no map key either
			m, _ := v.(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if p, ok := find(m[k], join(path, k), nil); ok {
					return p, true
				}
			}
			return "", false
		case isList: // a list of objects on the way
			for i, e := range list {
				if p, ok := find(e, path+"["+strconv.Itoa(i)+"]", keys); ok {
					return p, true
				}
			}
			return "", false
		}
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		sub, ok := m[keys[0]]
		if !ok {
			return "", false
		}
		return find(sub, join(path, keys[0]), keys[1:])
	}
	if te.Field == "" {
		return te.Field
	}
	if p, ok := find(doc, "", strings.Split(te.Field, ".")); ok {
		return p
	}
	return te.Field
}

// jsonKind is encoding/json's name for the kind of a decoded value, as
// UnmarshalTypeError.Value starts.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return ""
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// unknownFields reports every key that the schema does not define, with its
// full path, so that a typo never silently drops a rule.
func unknownFields(c *errs, path string, v any, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch val := v.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for k, sub := range val {
				unknownFields(c, join(path, k), sub, t.Elem())
			}
			return
		}
		if t.Kind() != reflect.Struct {
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(val))
		for k := range val {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				hint := ""
				for name := range fields {
					if strings.EqualFold(name, k) {
						hint = fmt.Sprintf(" (did you mean %q?)", name)
					}
				}
				*c = append(*c, &FieldError{Field: join(path, k), Err: fmt.Errorf("%w%s", ErrUnknownField, hint)})
				continue
			}
			unknownFields(c, join(path, k), val[k], ft)
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, sub := range val {
			unknownFields(c, path+"["+strconv.Itoa(i)+"]", sub, t.Elem())
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// source maps field paths back to lines of the YAML file.
type source struct {
	name  string
	data  []byte
	mu    sync.Mutex // guards lines, built on first use
	lines map[string]int
	// rewrite maps a vaultwall field path to the document's (Azure
	// formats); nil keeps it.
	rewrite func(string) string
}

func (s *source) annotateAll(list []error) error {
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, s.annotate(e))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := lineOf(out[i]), lineOf(out[j])
		return a < b
	})
	return errors.Join(out...)
}

func lineOf(err error) int {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Line
	}
	return 0
}

func (s *source) annotate(err error) error {
	var fe *FieldError
	// A problem located in another file (a policy file's, from rego) keeps
	// its place: it is wrapped, as an error without a place is.
	if !errors.As(err, &fe) || fe.File != "" && fe.File != s.name || fe.File == "" && fe.Line > 0 {
		return &FieldError{File: s.name, Err: err}
	}
	if fe.File == "" && s.rewrite != nil {
		fe.Field = s.rewrite(fe.Field)
	}
	fe.File = s.name
	if fe.Line == 0 {
		fe.Line = s.line(fe.Field)
		if fe.Line == 0 {
			fe.Line = syntaxLine(fe.Err)
		}
	}
	return fe
}

// Line is the line of field (a path such as "properties.networkAcls") in
// the file the configuration was parsed from, 0 when the file does not
// set it.
func (c *Config) Line(field string) int {
	if c.src == nil {
		return 0
	}
	c.src.mu.Lock()
	defer c.src.mu.Unlock()
	c.src.index()
	return c.src.lines[field]
}

// line finds the line of a field path, or of its nearest ancestor present
// in the file.
func (s *source) line(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index()
	for path != "" {
		if l, ok := s.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// index maps every field path of the file to its line, once.
func (s *source) index() {
	if s.lines == nil {
		s.lines = map[string]int{}
		var doc yamlv3.Node
		if yamlv3.Unmarshal(s.data, &doc) == nil && len(doc.Content) > 0 {
			walkLines(s.lines, "", doc.Content[0])
		}
	}
}

func walkLines(m map[string]int, path string, n *yamlv3.Node) {
	switch n.Kind {
	case yamlv3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			m[p] = k.Line
			walkLines(m, p, v)
		}
	case yamlv3.SequenceNode:
		for i, v := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			m[p] = v.Line
			walkLines(m, p, v)
		}
	case yamlv3.AliasNode:
		if n.Alias != nil {
			walkLines(m, path, n.Alias)
		}
	}
}

// syntaxLine digs the line number out of a YAML parser message.
func syntaxLine(err error) int {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	j := i + len("line ")
	k := j
	for k < len(msg) && msg[k] >= '0' && msg[k] <= '9' {
		k++
	}
	n, _ := strconv.Atoi(msg[j:k])
	return n
}

// Marshal renders a configuration back to YAML (used by the control plane
// to persist changes).
func Marshal(c *Config) ([]byte, error) {
	j, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(bytes.TrimSpace(j))
}
