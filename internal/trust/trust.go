// Package trust verifies release signatures against the keys compiled into
// km (issue 10, SHARED contract "Signatures").
//
// The signed statement of release <v> is the bytes "km-release-<v>\n"
// followed by the exact bytes of SHA256SUMS; SHA256SUMS.p256 is a DER ECDSA
// P-256 signature, SHA-256, over it. Binding the version into the statement
// makes a signature taken from another release fail.
package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MaxSignature bounds SHA256SUMS.p256 (a DER P-256 signature is at most 72 bytes).
const MaxSignature = 256

// ErrNoKeys: this km was built without -X main.TrustedKeys.
var ErrNoKeys = errors.New("this km was built without release keys, so it cannot verify any release")

// ErrBadSignature: no trusted key verifies the statement.
var ErrBadSignature = errors.New("the signature does not verify with any release key this km trusts")

// Key is one trusted public key.
type Key struct {
	Pub *ecdsa.PublicKey
	ID  string // first 16 hex digits of the SHA-256 of its DER SubjectPublicKeyInfo
}

// Keys is the trusted set, in the order they were given.
type Keys []Key

// ParseKeys reads the value of main.TrustedKeys: comma-separated standard
// base64 of DER SubjectPublicKeyInfo, each an ECDSA P-256 key. Empty means no
// keys (not an error: Verify then refuses everything).
func ParseKeys(s string) (Keys, error) {
	var keys Keys
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return nil, fmt.Errorf("trusted key %d is not base64: %v", i+1, err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("trusted key %d is not a SubjectPublicKeyInfo: %v", i+1, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("trusted key %d is not an ECDSA P-256 key", i+1)
		}
		sum := sha256.Sum256(der)
		keys = append(keys, Key{Pub: ec, ID: hex.EncodeToString(sum[:8])})
	}
	return keys, nil
}

// Statement is what the release of version signs.
func Statement(version string, sums []byte) []byte {
	var b bytes.Buffer
	b.WriteString("km-release-" + version + "\n")
	b.Write(sums)
	return b.Bytes()
}

// Verify checks sig (DER) over the statement of version with every key and
// returns the key that verified it.
func (k Keys) Verify(version string, sums, sig []byte) (Key, error) {
	if len(k) == 0 {
		return Key{}, ErrNoKeys
	}
	digest := sha256.Sum256(Statement(version, sums))
	for _, key := range k {
		if ecdsa.VerifyASN1(key.Pub, digest[:], sig) {
			return key, nil
		}
	}
	return Key{}, ErrBadSignature
}
