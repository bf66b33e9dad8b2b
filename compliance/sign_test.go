package compliance

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sigstore/cosign/v2/pkg/cosign"
)

func keyPair(t *testing.T, password string) *cosign.KeysBytes {
	t.Helper()
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSignVerify: a report signed with a cosign key verifies with its
// public key; a one-byte edit, another key or a truncated signature do
// not; a wrong password cannot sign.
func TestSignVerify(t *testing.T) {
	keys := keyPair(t, "s3cret")
	report := []byte("<!DOCTYPE html><html><body>Compliance report — prod-eu-1: 66.7 %</body></html>\n")
	sig, err := Sign(keys.PrivateBytes, []byte("s3cret"), report)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(keys.PublicBytes, bytes.NewReader(report), sig); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	// The .sig file may end with a newline.
	if err := Verify(keys.PublicBytes, bytes.NewReader(report), append(sig, '\n')); err != nil {
		t.Errorf("signature with a newline rejected: %v", err)
	}
	for _, i := range []int{0, len(report) / 2, len(report) - 1} {
		edited := bytes.Clone(report)
		edited[i] ^= 0x01
		if err := Verify(keys.PublicBytes, bytes.NewReader(edited), sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("byte %d edited: %v", i, err)
		}
	}
	other := keyPair(t, "")
	if err := Verify(other.PublicBytes, bytes.NewReader(report), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: %v", err)
	}
	if err := Verify(keys.PublicBytes, bytes.NewReader(report), sig[:len(sig)/2]); !errors.Is(err, ErrBadSignature) {
		t.Errorf("truncated signature: %v", err)
	}
	if err := Verify(keys.PublicBytes, bytes.NewReader(report), nil); !errors.Is(err, ErrBadSignature) {
		t.Errorf("empty signature: %v", err)
	}
	if _, err := Sign(keys.PrivateBytes, []byte("wrong"), report); err == nil {
		t.Error("signed with a wrong password")
	}
	if err := Verify([]byte("not a key"), bytes.NewReader(report), sig); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("malformed key: %v", err)
	}
	// An unencrypted key pair's empty password works too.
	if _, err := Sign(other.PrivateBytes, nil, report); err != nil {
		t.Errorf("empty password: %v", err)
	}
}
