// Package trusttest makes release keys and signatures for tests (never linked
// into km: only tests import it).
package trusttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers-cli/internal/trust"
)

// Key is a freshly generated P-256 release key.
type Key struct {
	Priv *ecdsa.PrivateKey
	B64  string // what -X main.TrustedKeys holds for it
}

// NewKey generates a key.
func NewKey(t testing.TB) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Priv: priv, B64: base64.StdEncoding.EncodeToString(der)}
}

// Sign is SHA256SUMS.p256 of version's statement.
func (k Key) Sign(t testing.TB, version string, sums []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(trust.Statement(version, sums))
	sig, err := ecdsa.SignASN1(rand.Reader, k.Priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Joined is the TrustedKeys value for keys.
func Joined(keys ...Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.B64
	}
	return strings.Join(parts, ",")
}

// Sum is the lower-case hex SHA-256 of body.
func Sum(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// Sums is a SHA256SUMS body for files (sorted by name, as the engine writes it).
func Sums(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(Sum(files[n]) + "  " + n + "\n")
	}
	return []byte(b.String())
}
