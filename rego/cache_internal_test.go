package rego

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// keyablePlan is every field a cache key can hold.
func keyablePlan() plan {
	var p plan
	for _, sec := range schema {
		if sec.scalar != nil {
			continue
		}
		k := sec
		k.fields = nil
		for _, f := range sec.fields {
			if f.appendKey != nil {
				k.fields = append(k.fields, f)
			}
		}
		p = append(p, k)
	}
	return p
}

func keyDecision(oid, app string, groups []string, claim any, addr string, rbac bool) *authz.Decision {
	d := &authz.Decision{
		Vault:  &authz.Vault{Name: "v", TenantID: "t", RBAC: rbac},
		Caller: &authz.Caller{TenantID: "t", ObjectID: oid, ApplicationID: app, Groups: groups, Claims: map[string]any{"c": claim}},
		Operation: authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get",
			Object: oid, Scope: "/secrets/" + app},
		Request: &authz.Request{Method: "GET", Path: "/secrets/x", Host: app},
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		d.Network.ClientAddr = a
	}
	d.Network.Rule = addr
	return d
}

// FuzzDecisionKey asserts the property the decision cache rests on: two
// decisions have the same key only when they build the same input
// document, so a hit can only ever serve the verdict of an identical input.
func FuzzDecisionKey(f *testing.F) {
	f.Add("ab", "c", "x,y", "ab", "a", "bc", "x,y", "ab", "10.0.0.1", false)
	f.Add("a", "bc", "x", "", "a", "bc", "x,", "", "", true)
	f.Add("a", "", ",", "\x00", "a", "", "", "\x00", "::1", false)
	f.Add("a\x01b", "c", "", "1", "a", "\x01bc", "", "1", "1.2.3.4", false)
	f.Add("same", "same", "g1,g2", "v", "same", "same", "g1,g2", "v", "::ffff:1.2.3.4", true)
	f.Add("a", "b", "", `{"x":[1,"2",null,{"y":true}]}`, "a", "b", "", `{"x":[1,"2",null,{"y":false}]}`, "", false)
	f.Add("a", "b", "", `["ab","c"]`, "a", "b", "", `["a","bc"]`, "", false)
	p := keyablePlan()
	f.Fuzz(func(t *testing.T, oid1, app1, groups1, claim1, oid2, app2, groups2, claim2, addr string, rbac bool) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		// A claim that is JSON is decoded, as a token's claims are.
		typed := false
		claim := func(s string) any {
			var v any
			if json.Unmarshal([]byte(s), &v) == nil {
				typed = true
				return v
			}
			return s
		}
		d1 := keyDecision(oid1, app1, split(groups1), claim(claim1), addr, rbac)
		d2 := keyDecision(oid2, app2, split(groups2), claim(claim2), addr, !rbac == (oid1 == "flip"))
		k1, err1 := p.appendKey(nil, d1)
		k2, err2 := p.appendKey(nil, d2)
		in1, err3 := p.build(d1)
		in2, err4 := p.build(d2)
		// Claims here are what JSON decoding makes (or plain strings), so
		// both the key and the input must build: an error would be a key
		// that can never be built, a cache that never serves, and a target
		// that passes on it if errors were skipped.
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("a JSON-shaped decision has no key or no input: %v", err)
		}
		if len(k1) == 0 || len(k2) == 0 {
			t.Fatal("empty cache key")
		}
		sameKey := string(k1) == string(k2)
		sameInput := in1.Compare(in2) == 0
		// Equal keys must mean equal inputs. The converse holds too, except
		// for numbers that compare equal with different bits (0 and -0):
		// a harmless miss.
		if sameKey && !sameInput || sameInput && !sameKey && !typed {
			t.Fatalf("same key %v, same input %v:\n%v\n%v", sameKey, sameInput, in1, in2)
		}
	})
}

// The shipped policy keys on exactly the fields its rules read.
func TestShippedPolicyKey(t *testing.T) {
	p, err := New(t.Context(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sec := range p.input {
		for _, f := range sec.fields {
			got = append(got, sec.key.String()+"."+f.key.String())
		}
	}
	want := `"operation"."plane" "operation"."resource" "operation"."permission" "operation"."data_action" "operation"."scope" ` +
		`"caller"."tenant_id" "caller"."object_id" "caller"."application_id" "caller"."groups" "caller"."groups_overage" ` +
		`"vault"."tenant_id" "vault"."rbac"`
	if g := strings.Join(got, " "); g != want {
		t.Errorf("key fields:\n%s\nwant\n%s", g, want)
	}
	if p.cache == nil {
		t.Fatalf("no cache: %s", p.nocache)
	}
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("vault.yaml", []byte("vault: {name: contoso, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A waiter shares only a verdict: when the evaluation it waited for fails
// or panics, it evaluates for itself; when its own context ends first, it
// gives up with ErrEval.
func TestDecisionCacheFlights(t *testing.T) {
	ok := result{Allowed: true, Model: authz.ModelAccessPolicy}
	now, exp := int64(1), int64(time.Hour)
	key := []byte("k")
	do := func(ctx context.Context, c *decisionCache, eval func() (result, error)) (result, error) {
		return evalOnce(ctx, c, c.Hash(key), key, now, exp, eval)
	}
	get := func(c *decisionCache) (result, bool) { return c.Get(c.Hash(key), key, now) }

	for _, lead := range []struct {
		name string
		eval func(release <-chan struct{}) (result, error)
	}{
		{"fails", func(release <-chan struct{}) (result, error) { <-release; return result{}, ErrTimeout }},
		{"panics", func(release <-chan struct{}) (result, error) { <-release; panic("boom") }},
	} {
		t.Run(lead.name, func(t *testing.T) {
			c := newDecisionCache(16)
			release := make(chan struct{})
			started := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				defer func() { _ = recover() }()
				_, _ = do(t.Context(), c, func() (result, error) { close(started); return lead.eval(release) })
			})
			<-started
			var got result
			var err error
			ownEval := false
			wg.Go(func() {
				got, err = do(t.Context(), c, func() (result, error) { ownEval = true; return ok, nil })
			})
			for c.Stats().Coalesced == 0 {
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			if err != nil || got != ok || !ownEval {
				t.Fatalf("waiter: %+v %v, evaluated itself: %v", got, err, ownEval)
			}
			if _, hit := get(c); hit {
				t.Errorf("a failed evaluation was cached")
			}
			// No flight is left: the next miss evaluates.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if r, err := do(ctx, c, func() (result, error) { return ok, nil }); err != nil || r != ok || c.Stats().Coalesced != 1 {
				t.Errorf("a flight was left: %+v %v %+v", r, err, c.Stats())
			}
		})
	}

	t.Run("the waiter's context ends", func(t *testing.T) {
		c := newDecisionCache(16)
		release := make(chan struct{})
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = do(context.Background(), c, func() (result, error) { close(started); <-release; return ok, nil })
		}()
		<-started
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := do(ctx, c, func() (result, error) { t.Error("evaluated"); return ok, nil }); !errors.Is(err, ErrEval) {
			t.Errorf("err %v, want ErrEval", err)
		}
		close(release)
		<-done
		if r, hit := get(c); !hit || r != ok {
			t.Errorf("the leader's verdict was not cached")
		}
	})
}
