package fakevault

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512" // RS384/RS512/PS384/PS512
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

type key struct {
	name, version string
	kty           string
	ops           []string
	priv          *rsa.PrivateKey
	attrs         attributes
	tags          map[string]string
	created       time.Time
	managed       bool
	deletedAt     time.Time
}

var allKeyOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}

func (k *key) kid(base string) string { return base + "/keys/" + k.name + "/" + k.version }

// bundle is a KeyBundle with the public JSON Web Key.
func (k *key) bundle(base string) map[string]any {
	m := k.item(base)
	delete(m, "kid")
	m["key"] = map[string]any{
		"kid":     k.kid(base),
		"kty":     k.kty,
		"key_ops": k.ops,
		"n":       b64url(k.priv.N.Bytes()),
		"e":       b64url(big.NewInt(int64(k.priv.E)).Bytes()),
	}
	return m
}

// item is a KeyItem: kid without version.
func (k *key) item(base string) map[string]any {
	a := k.attrs.json(k.created)
	a["exportable"] = false
	m := map[string]any{"kid": base + "/keys/" + k.name, "attributes": a}
	if len(k.tags) > 0 {
		m["tags"] = k.tags
	}
	if k.managed {
		m["managed"] = true
	}
	return m
}

func (k *key) deleted(base string) map[string]any {
	m := k.bundle(base)
	m["recoveryId"] = base + "/deletedkeys/" + k.name
	m["deletedDate"], m["scheduledPurgeDate"] = deletedDates(k.deletedAt)
	return m
}

func (v *Vault) findKey(name, version string) *key {
	ks := v.keys[name]
	if len(ks) == 0 {
		return nil
	}
	if version == "" {
		return ks[len(ks)-1]
	}
	for _, k := range ks {
		if k.version == version {
			return k
		}
	}
	return nil
}

// keyOps are the POST operations on a key, by path segment.
var keyOps = map[string]string{
	"wrapkey": "wrapKey", "unwrapkey": "unwrapKey", "sign": "sign", "verify": "verify",
	"encrypt": "encrypt", "decrypt": "decrypt",
}

func (v *Vault) routeKeys(c *call, seg []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := c.r.Method
	switch {
	case (len(seg) == 0 || len(seg) == 1 && seg[0] == "") && m == http.MethodGet:
		var items []map[string]any
		for _, ks := range v.keys {
			items = append(items, ks[len(ks)-1].item(c.base))
		}
		c.page(items)
	case len(seg) == 0:
		c.badRoute()
	case len(seg) == 2 && seg[1] == "create" && m == http.MethodPost:
		v.createKey(c, seg[0])
	case len(seg) == 1 && m == http.MethodDelete:
		k := v.findKey(seg[0], "")
		if k == nil {
			c.notFound("key", seg[0])
			return
		}
		delete(v.keys, seg[0])
		k.deletedAt = time.Now()
		v.deletedKeys[seg[0]] = k
		c.ok(k.deleted(c.base))
	case len(seg) == 2 && seg[1] == "versions" && m == http.MethodGet:
		var items []map[string]any
		for _, k := range v.keys[seg[0]] {
			it := k.item(c.base)
			it["kid"] = k.kid(c.base)
			items = append(items, it)
		}
		if items == nil {
			c.notFound("key", seg[0])
			return
		}
		c.page(items)
	case len(seg) == 2 && keyOps[seg[1]] != "" && m == http.MethodPost: // version-less: /keys/{n}/wrapkey
		v.keyOperation(c, seg[0], "", seg[1])
	case len(seg) == 3 && keyOps[seg[2]] != "" && m == http.MethodPost: // /keys/{n}/{v}/wrapkey, {v} may be ""
		v.keyOperation(c, seg[0], seg[1], seg[2])
	case (len(seg) == 1 || len(seg) == 2) && m == http.MethodGet:
		version := ""
		if len(seg) == 2 {
			version = seg[1]
		}
		k := v.findKey(seg[0], version)
		if k == nil {
			c.notFound("key", seg[0])
			return
		}
		c.ok(k.bundle(c.base))
	default:
		c.badRoute()
	}
}

func (v *Vault) createKey(c *call, name string) {
	if !objectName.MatchString(name) {
		c.badParameter("The key name is invalid: it must match ^[0-9a-zA-Z-]+$ and be 1-127 characters long.")
		return
	}
	var body struct {
		Kty            string            `json:"kty"`
		KeySize        int               `json:"key_size"`
		PublicExponent int               `json:"public_exponent"`
		KeyOps         []string          `json:"key_ops"`
		Attributes     attributes        `json:"attributes"`
		Tags           map[string]string `json:"tags"`
	}
	if !c.decode(&body) {
		return
	}
	if body.Kty != "RSA" && body.Kty != "RSA-HSM" {
		c.badParameter(fmt.Sprintf("Key type %q is not supported by this vault (RSA, RSA-HSM).", body.Kty))
		return
	}
	size := body.KeySize
	if size == 0 {
		size = 2048
	}
	if size != 2048 && size != 3072 && size != 4096 {
		c.badParameter(fmt.Sprintf("Key size %d is not supported (2048, 3072, 4096).", size))
		return
	}
	if body.PublicExponent != 0 && body.PublicExponent != 65537 {
		c.badParameter("Only the public exponent 65537 is supported.")
		return
	}
	ops := body.KeyOps
	if len(ops) == 0 {
		ops = allKeyOps
	}
	k, err := v.newKey(name, body.Kty, size, ops)
	if err != nil {
		writeError(c.w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	k.attrs, k.tags = body.Attributes, body.Tags
	c.ok(k.bundle(c.base))
}

// newKey generates and stores a key version; v.mu is held.
func (v *Vault) newKey(name, kty string, size int, ops []string) (*key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, size)
	if err != nil {
		return nil, err
	}
	k := &key{name: name, version: newVersion(), kty: kty, ops: ops, priv: priv, created: time.Now()}
	v.keys[name] = append(v.keys[name], k)
	return k, nil
}

func (v *Vault) keyOperation(c *call, name, version, seg string) {
	k := v.findKey(name, version)
	if k == nil {
		c.notFound("key", name)
		return
	}
	op := keyOps[seg]
	if !slices.Contains(k.ops, op) {
		c.w.Header().Set("X-Ms-Error-Code", "Forbidden")
		writeJSON(c.w, http.StatusForbidden, map[string]any{"error": map[string]any{
			"code": "Forbidden", "message": fmt.Sprintf("Operation %q is not allowed on this key.", op),
			"innererror": map[string]any{"code": "KeyOperationForbidden"},
		}})
		return
	}
	var body struct {
		Alg    string `json:"alg"`
		Value  string `json:"value"`
		Digest string `json:"digest"`
	}
	if !c.decode(&body) {
		return
	}
	value, err := unb64url(body.Value)
	if err != nil {
		c.badParameter("The parameter 'value' is not base64url: " + err.Error())
		return
	}
	var out []byte
	switch op {
	case "wrapKey", "encrypt":
		out, err = encrypt(&k.priv.PublicKey, body.Alg, value)
	case "unwrapKey", "decrypt":
		out, err = decrypt(k.priv, body.Alg, value)
	case "sign":
		out, err = sign(k.priv, body.Alg, value)
	case "verify":
		digest, derr := unb64url(body.Digest)
		if derr != nil {
			c.badParameter("The parameter 'digest' is not base64url: " + derr.Error())
			return
		}
		ok := verify(&k.priv.PublicKey, body.Alg, digest, value) == nil
		c.ok(map[string]any{"value": ok})
		return
	}
	if err != nil {
		c.badParameter(err.Error())
		return
	}
	c.ok(map[string]any{"kid": k.kid(c.base), "value": b64url(out)})
}

func oaepHash(alg string) (hash.Hash, bool) {
	switch alg {
	case "RSA-OAEP":
		return sha1.New(), true
	case "RSA-OAEP-256":
		return sha256.New(), true
	}
	return nil, false
}

func encrypt(pub *rsa.PublicKey, alg string, pt []byte) ([]byte, error) {
	if h, ok := oaepHash(alg); ok {
		return rsa.EncryptOAEP(h, rand.Reader, pub, pt, nil)
	}
	if alg == "RSA1_5" {
		return rsa.EncryptPKCS1v15(rand.Reader, pub, pt)
	}
	return nil, fmt.Errorf("Algorithm %q is not supported for this key.", alg)
}

func decrypt(priv *rsa.PrivateKey, alg string, ct []byte) ([]byte, error) {
	if h, ok := oaepHash(alg); ok {
		return rsa.DecryptOAEP(h, nil, priv, ct, nil)
	}
	if alg == "RSA1_5" {
		return rsa.DecryptPKCS1v15(nil, priv, ct)
	}
	return nil, fmt.Errorf("Algorithm %q is not supported for this key.", alg)
}

// signHash maps RS*/PS* to their hash.
func signHash(alg string) (crypto.Hash, bool, error) {
	hs := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	if len(alg) == 5 && (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) {
		if h, ok := hs[alg[2:]]; ok {
			return h, alg[0] == 'P', nil
		}
	}
	return 0, false, fmt.Errorf("Algorithm %q is not supported for this key.", alg)
}

func sign(priv *rsa.PrivateKey, alg string, digest []byte) ([]byte, error) {
	h, pss, err := signHash(alg)
	if err != nil {
		return nil, err
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("The digest is %d bytes; %s needs %d.", len(digest), alg, h.Size())
	}
	if pss {
		return rsa.SignPSS(rand.Reader, priv, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.SignPKCS1v15(nil, priv, h, digest)
}

func verify(pub *rsa.PublicKey, alg string, digest, sig []byte) error {
	h, pss, err := signHash(alg)
	if err != nil {
		return err
	}
	if pss {
		return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.VerifyPKCS1v15(pub, h, digest, sig)
}

func (v *Vault) routeDeletedKeys(c *call, seg []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(seg) != 1 {
		c.badRoute()
		return
	}
	k := v.deletedKeys[seg[0]]
	if k == nil {
		c.notFound("key", seg[0])
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		c.ok(k.deleted(c.base))
	case http.MethodDelete:
		delete(v.deletedKeys, seg[0])
		c.w.WriteHeader(http.StatusNoContent)
	default:
		c.badRoute()
	}
}

// b64url is Key Vault's base64url without padding.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64url(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
