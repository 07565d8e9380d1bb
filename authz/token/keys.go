package token

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// alg is one accepted signature algorithm, as a bit in an algSet.
type alg uint8

const (
	algRS256 alg = iota
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	numAlgs
)

var algNames = [numAlgs]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}

// verifiers are jwx's stateless verifiers, built once.
var verifiers [numAlgs]jws.Verifier

func init() {
	for i, name := range algNames {
		v, err := jws.NewVerifier(jwa.SignatureAlgorithm(name))
		if err != nil {
			panic(fmt.Sprintf("jwx has no verifier for %s: %v", name, err))
		}
		verifiers[i] = v
	}
}

func parseAlg(s string) (alg, bool) {
	for i, n := range algNames {
		if n == s {
			return alg(i), true
		}
	}
	return 0, false
}

// algSet is a set of algorithms.
type algSet uint16

const (
	rsaAlgs     = algSet(1<<algRS256 | 1<<algRS384 | 1<<algRS512 | 1<<algPS256 | 1<<algPS384 | 1<<algPS512)
	defaultAlgs = rsaAlgs | 1<<algES256 | 1<<algES384
)

func (s algSet) has(a alg) bool { return s&(1<<a) != 0 }

func (s algSet) String() string {
	var names []string
	for i := range numAlgs {
		if s.has(i) {
			names = append(names, algNames[i])
		}
	}
	return strings.Join(names, ", ")
}

// verifyKey is one usable public key of an issuer.
type verifyKey struct {
	kid  string
	algs algSet // the algorithms this key may verify
	pub  crypto.PublicKey
}

// keySet is an immutable snapshot of an issuer's usable keys. A new
// snapshot replaces it whole; readers load it atomically.
type keySet struct {
	byKID map[string]*verifyKey
	// fingerprint identifies the set's content: a refresh that returns the
	// same keys keeps the generation, so verified tokens stay cached.
	fingerprint [32]byte
	// gen increases each time the content changes.
	gen uint64
	// fetched is when the content was last confirmed by a fetch.
	fetched time.Time
}

// minRSABits refuses RSA keys too weak to trust.
const minRSABits = 2048

// errNoUsableKeys keeps the last good keys when an issuer serves a set with
// nothing vaultwall can use (an empty or symmetric-only set is far more
// likely a publishing accident than a revocation of every key).
var errNoUsableKeys = errors.New("the key set has no usable signing key (RSA ≥ 2048 bits, EC P-256 or P-384, with a kid)")

// usableKeys extracts the signature-verification keys from a JWK set,
// skipping (with a reason) every key vaultwall must not or cannot use:
// symmetric keys (never HMAC against a JWKS), encryption keys, keys without
// a kid, duplicate kids, weak RSA keys, other curves.
func usableKeys(set jwk.Set) (map[string]*verifyKey, [32]byte, []string) {
	keys := make(map[string]*verifyKey, set.Len())
	dup := map[string]bool{}
	var skipped []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		vk, err := usableKey(k)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, k.KeyID(), err))
			continue
		}
		if _, seen := keys[vk.kid]; seen || dup[vk.kid] {
			// Two keys under one kid: neither can be chosen safely.
			dup[vk.kid] = true
			delete(keys, vk.kid)
			skipped = append(skipped, fmt.Sprintf("kid %q appears more than once", vk.kid))
			continue
		}
		keys[vk.kid] = vk
	}
	return keys, fingerprint(keys), skipped
}

func usableKey(k jwk.Key) (*verifyKey, error) {
	kid := k.KeyID()
	if kid == "" {
		return nil, errors.New("no kid")
	}
	if u := k.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
		return nil, fmt.Errorf("use %q is not sig", u)
	}
	if ops := k.KeyOps(); len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, errors.New("key_ops lacks verify")
	}
	pk, err := k.PublicKey() // a JWKS that leaks private parts still only yields public keys
	if err != nil {
		return nil, fmt.Errorf("no public key: %w", err)
	}
	var raw any
	if err := pk.Raw(&raw); err != nil {
		return nil, fmt.Errorf("unreadable key: %w", err)
	}
	var algs algSet
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits (at least %d required)", pub.N.BitLen(), minRSABits)
		}
		algs = rsaAlgs
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			algs = 1 << algES256
		case elliptic.P384():
			algs = 1 << algES384
		default:
			return nil, fmt.Errorf("curve %s is not accepted", pub.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("key type %s is not accepted for signatures", k.KeyType())
	}
	if a := k.Algorithm().String(); a != "" {
		// The key's own alg, when published, is the only one it may verify.
		ka, ok := parseAlg(a)
		if !ok || !algs.has(ka) {
			return nil, fmt.Errorf("alg %q is not an accepted signature algorithm for this key", a)
		}
		algs = 1 << ka
	}
	return &verifyKey{kid: kid, algs: algs, pub: raw}, nil
}

// fingerprint hashes the kids, algorithms and JWK thumbprints of a key map
// in kid order.
func fingerprint(keys map[string]*verifyKey) [32]byte {
	kids := make([]*verifyKey, 0, len(keys))
	for _, k := range keys {
		kids = append(kids, k)
	}
	slices.SortFunc(kids, func(a, b *verifyKey) int { return cmp.Compare(a.kid, b.kid) })
	h := sha256.New()
	for _, k := range kids {
		fmt.Fprintf(h, "%q %d ", k.kid, k.algs)
		switch pub := k.pub.(type) {
		case *rsa.PublicKey:
			fmt.Fprintf(h, "rsa %x %d\n", pub.N.Bytes(), pub.E)
		case *ecdsa.PublicKey:
			b, _ := pub.ECDH() // curve and point; error impossible for accepted curves
			if b != nil {
				fmt.Fprintf(h, "ec %x\n", b.Bytes())
			}
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func sameKeys(a *keySet, fp [32]byte) bool {
	return a != nil && bytes.Equal(a.fingerprint[:], fp[:])
}
