package trust_test

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers-cli/internal/trust"
	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
)

var sums = []byte(strings.Repeat("ab", 32) + "  km-linux-amd64\n")

func TestVerifyAndRotation(t *testing.T) {
	a, b := trusttest.NewKey(t), trusttest.NewKey(t)
	both, err := trust.ParseKeys(trusttest.Joined(a, b))
	if err != nil || len(both) != 2 {
		t.Fatalf("%v %v", both, err)
	}
	onlyB, _ := trust.ParseKeys(b.B64)
	sigA, sigB := a.Sign(t, "v1.2.3", sums), b.Sign(t, "v1.2.3", sums)
	if k, err := both.Verify("v1.2.3", sums, sigB); err != nil || k.ID != both[1].ID {
		t.Fatalf("A+B trusts B: %v %v", k, err)
	}
	if _, err := both.Verify("v1.2.3", sums, sigA); err != nil {
		t.Fatalf("A+B trusts A: %v", err)
	}
	if _, err := onlyB.Verify("v1.2.3", sums, sigA); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("A retired: %v", err)
	}
	if _, err := both.Verify("v1.2.4", sums, sigB); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("another version's signature: %v", err)
	}
	if _, err := both.Verify("v1.2.3", append([]byte{}, sums[1:]...), sigB); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("other SHA256SUMS: %v", err)
	}
	if _, err := both.Verify("v1.2.3", sums, nil); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("empty signature: %v", err)
	}
	if _, err := trust.Keys(nil).Verify("v1.2.3", sums, sigB); !errors.Is(err, trust.ErrNoKeys) {
		t.Fatalf("no keys: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	if k, err := trust.ParseKeys(""); err != nil || len(k) != 0 {
		t.Fatalf("empty: %v %v", k, err)
	}
	a := trusttest.NewKey(t)
	if k, err := trust.ParseKeys(" " + a.B64 + ", "); err != nil || len(k) != 1 {
		t.Fatalf("spaces: %v %v", k, err)
	}
	rsaDER := "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL6Ls7FNjVV0S3zQyqKf9iyJ9pDBD5Yl2RuiRpJgUvmY4V3wBG3Wq5TEyNpqXVP4F4VWhUPl6EvhuXpKDd8OwJsCAwEAAQ=="
	for _, bad := range []string{"not base64!", "AAAA", rsaDER} {
		if _, err := trust.ParseKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestOpensslAgrees: a signature openssl makes over the statement verifies
// here, and ours verifies with openssl (the contract's hand check).
func TestOpensslAgrees(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	keyPEM, pubPEM, stmt, sig := filepath.Join(dir, "k.pem"), filepath.Join(dir, "pub.pem"), filepath.Join(dir, "stmt"), filepath.Join(dir, "sig")
	run := func(args ...string) []byte {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPEM)
	run("pkey", "-in", keyPEM, "-pubout", "-out", pubPEM)
	der := run("pkey", "-in", keyPEM, "-pubout", "-outform", "DER")
	os.WriteFile(stmt, trust.Statement("v2.0.0", sums), 0o600)
	run("dgst", "-sha256", "-sign", keyPEM, "-out", sig, stmt)
	keys, err := trust.ParseKeys(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	sigBytes, _ := os.ReadFile(sig)
	if _, err := keys.Verify("v2.0.0", sums, sigBytes); err != nil {
		t.Fatalf("openssl's signature: %v", err)
	}

	ours := trusttest.NewKey(t)
	os.WriteFile(sig, ours.Sign(t, "v2.0.0", sums), 0o600)
	os.WriteFile(pubPEM, []byte("-----BEGIN PUBLIC KEY-----\n"+ours.B64+"\n-----END PUBLIC KEY-----\n"), 0o600)
	if out := run("dgst", "-sha256", "-verify", pubPEM, "-signature", sig, stmt); !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl: %s", out)
	}
}

func TestParseSums(t *testing.T) {
	h := strings.Repeat("ab", 32)
	got, err := trust.ParseSums([]byte(h + "  km-linux-amd64\n" + strings.ToUpper(h) + " *km.sbom.json\n"))
	if err != nil || got["km-linux-amd64"] != h || got["km.sbom.json"] != h || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", h + "  km\n" + h + "  km\n", h + "  km", h + " km\n", h + "  ../km\n",
		h + "  km x\n", h[:63] + "g  km\n", h + "  km\r\n", h + "  \x1b[31m\n", "\n", h + "  km\n\n"} {
		if _, err := trust.ParseSums([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseSingle(t *testing.T) {
	h := strings.Repeat("cd", 32)
	for _, ok := range []string{h + "  km-linux-amd64\n", h + "  km-linux-amd64", strings.ToUpper(h) + " *km-linux-amd64\n"} {
		if got, err := trust.ParseSingle([]byte(ok), "km-linux-amd64"); err != nil || got != h {
			t.Errorf("%q: %s %v", ok, got, err)
		}
	}
	for _, bad := range []string{"", h + "\n", h + "  km-linux-arm64\n", h + "  km-linux-amd64\n" + h + "  km-linux-amd64\n",
		"<html>" + strings.Repeat("x", 80), h + "  km-linux-amd64\r\n"} {
		if _, err := trust.ParseSingle([]byte(bad), "km-linux-amd64"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
