package engine

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/tools/txtar"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/envoy"
)

var update = flag.Bool("update", false, "rewrite the expected response.json of golden decision files")

// goldenNow is the decision clock of every golden file: tokens are minted
// relative to it, so expectations never drift with the calendar.
var goldenNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// TestGoldenDecisions runs every testdata/decisions/*.txtar through the real
// in-process path — config.yaml loaded and built by the Builder, a real OIDC
// issuer over HTTPS, request.json decoded as Envoy's CheckRequest, Check on
// the ext_authz server — and compares the CheckResponse with response.json.
//
// Sections: config.yaml and request.json are text/templates ({{.Issuer}},
// {{.Tenant}}, {{.JWKSURI}}, {{.CAFile}}, {{.PolicyDir}}, {{token "name"}},
// {{envoyCert "name"}}); tokens.json maps token names to claim overrides of
// a valid app token (null deletes a claim; "now+1h"-style strings are times
// relative to the decision clock); policy/*.rego files become the operator
// policy directory; response.json is the expected answer with the decision
// id replaced by DECISION-ID and the test issuer's URL by {{.Issuer}}. `go test ./engine -run Golden -update`
// rewrites expectations.
func TestGoldenDecisions(t *testing.T) {
	files, _ := filepath.Glob("testdata/decisions/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden decision files")
	}
	is := authztest.NewIssuer(t)
	is.Now = func() time.Time { return goldenNow }
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient(), Now: func() time.Time { return goldenNow }})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys, Now: func() time.Time { return goldenNow }}
	ca := authztest.NewTestCA(t)

	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sec := map[string][]byte{}
			dir := t.TempDir()
			policyDir := filepath.Join(dir, "policy")
			for _, fl := range ar.Files {
				sec[fl.Name] = fl.Data
				if strings.HasPrefix(fl.Name, "policy/") {
					p := filepath.Join(dir, fl.Name)
					_ = os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, fl.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var overrides map[string]map[string]any
			if raw, ok := sec["tokens.json"]; ok {
				if err := json.Unmarshal(raw, &overrides); err != nil {
					t.Fatalf("tokens.json: %v", err)
				}
			}
			certs := map[string]*authztest.TestCert{}
			claimsOf := func(n string) map[string]any {
				claims := is.Claims()
				o, ok := overrides[n]
				if !ok && n != "app" {
					t.Fatalf("token %q is not in tokens.json", n)
				}
				for k, v := range o {
					if v == nil {
						delete(claims, k)
						continue
					}
					if s, ok := v.(string); ok && strings.HasPrefix(s, "now") {
						d, err := time.ParseDuration(strings.TrimPrefix(s, "now"))
						if err != nil && s != "now" {
							t.Fatalf("tokens.json %s.%s: %v", n, k, err)
						}
						v = goldenNow.Add(d).Unix()
					}
					claims[k] = v
				}
				return claims
			}
			stranger := authztest.NewSigningKey(t, "RS256")
			stranger = authztest.WrapSigningKey(t, "stranger-key", "RS256", stranger.Signer)
			funcs := template.FuncMap{
				"token":         func(n string) string { return is.Mint(claimsOf(n)) },
				"tokenAlgNone":  func(n string) string { return authztest.Unsigned(t, is.Key().KID, claimsOf(n)) },
				"tokenHS256":    func(n string) string { return authztest.HS256WithPublicKey(t, is.Key(), claimsOf(n)) },
				"tokenTampered": func(n string) string { return authztest.Tamper(is.Mint(claimsOf(n))) },
				"tokenUnknownKey": func(n string) string {
					return authztest.Sign(t, stranger, nil, claimsOf(n))
				},
				"envoyCert": func(uri string) string {
					c, ok := certs[uri]
					if !ok {
						c = ca.Issue(authztest.CertOptions{URIs: []string{uri}})
						certs[uri] = c
					}
					return c.EnvoyCertificate()
				},
			}
			data := map[string]string{"Issuer": is.Issuer(), "Tenant": is.Tenant(), "JWKSURI": is.JWKSURL(),
				"CAFile": is.CAFile(), "PolicyDir": policyDir}
			render := func(t *testing.T, section string) []byte {
				t.Helper()
				raw, ok := sec[section]
				if !ok {
					t.Fatalf("missing section %s", section)
				}
				tpl, err := template.New(section).Funcs(funcs).Option("missingkey=error").Parse(string(raw))
				if err != nil {
					t.Fatalf("%s: %v", section, err)
				}
				var buf bytes.Buffer
				if err := tpl.Execute(&buf, data); err != nil {
					t.Fatalf("%s: %v", section, err)
				}
				return buf.Bytes()
			}

			// config.yaml, and each vaults.d/<vault>.yaml of a configuration
			// of several vaults, loaded as serve loads them.
			for _, fl := range ar.Files {
				if fl.Name == "config.yaml" || strings.HasPrefix(fl.Name, "vaults.d/") {
					p := filepath.Join(dir, fl.Name)
					_ = os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, render(t, fl.Name), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			fleet := NewFleet(filepath.Join(dir, "config.yaml"), b.Build, nil)
			if err := fleet.Load(t.Context()); err != nil {
				t.Fatalf("config: %v", err)
			}
			set := fleet.Set()
			t.Cleanup(set.Close)
			for _, rt := range set.Runtimes {
				if rt.Authenticator != nil {
					if err := rt.Authenticator.WaitReady(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
			}
			srv := envoy.NewServer(nil, nil)
			srv.SetVaults(set.Vaults)
			// A file holds one case (request.json, response.json) or several
			// (<case>.request.json, <case>.response.json).
			var cases []string
			for _, fl := range ar.Files {
				if c, ok := strings.CutSuffix(fl.Name, "request.json"); ok {
					cases = append(cases, c)
				}
			}
			if len(cases) == 0 {
				t.Fatal("no request.json section")
			}
			rewrite := false
			for _, c := range cases {
				t.Run(strings.TrimSuffix(c, "."), func(t *testing.T) {
					var cr authv3.CheckRequest
					if err := protojson.Unmarshal(render(t, c+"request.json"), &cr); err != nil {
						t.Fatalf("%srequest.json: %v", c, err)
					}
					resp, err := srv.Check(t.Context(), &cr)
					if err != nil {
						t.Fatalf("Check returned an RPC error: %v", err)
					}
					got := normalize(t, resp, is.Issuer())
					if *update {
						replaceSection(ar, c+"response.json", got)
						rewrite = true
						return
					}
					want, ok := sec[c+"response.json"]
					if !ok {
						t.Fatalf("missing section %sresponse.json (run with -update to create it)", c)
					}
					if w := canonicalJSON(t, want); w != string(got) {
						t.Errorf("response differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", got, w)
					}
				})
			}
			if rewrite {
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// normalize renders a CheckResponse as stable JSON with its decision id
// replaced, since ids are random.
func normalize(t *testing.T, resp *authv3.CheckResponse, issuer string) []byte {
	raw, err := protojson.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetDynamicMetadata().GetFields()[envoy.MDDecisionID].GetStringValue()
	if id != "" {
		raw = bytes.ReplaceAll(raw, []byte(id), []byte("DECISION-ID"))
	}
	// The test issuer listens on a random port.
	raw = bytes.ReplaceAll(raw, []byte(issuer), []byte("{{.Issuer}}"))
	return []byte(canonicalJSON(t, raw))
}

func canonicalJSON(t *testing.T, raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("response.json: %v", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func replaceSection(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}
