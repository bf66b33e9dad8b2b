// Package logchain is the format of the decision log's hash chain, shared
// by the writer (webhook.DecisionLog) and the reader that verifies it
// (compliance): every line carries seq (1, 2, … across the file), prev (the
// hash of the line before) and, last, its own hash over the bytes before
// it, SHA-256 or HMAC-SHA256 with a secret key. A process starts with a
// start record and ends with an end record; a gap record counts entries
// that could not be written. One definition, so the two sides cannot drift.
package logchain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// Record kinds: a line with a record field is one of these; a decision
// entry has none.
const (
	// RecordStart opens a chain: the first line a process writes. Its
	// prev is the hash of the file's last line when it continues a file,
	// empty when it starts one.
	RecordStart = "start"
	// RecordEnd closes a chain when the process stops cleanly; a chain
	// without one was cut short (a crash, or lines removed from its end).
	RecordEnd = "end"
	// RecordGap says how many entries could not be written (a full disk)
	// before this line.
	RecordGap = "gap"
)

// Hash algorithms of the chain, named on its start record.
const (
	// SHA256 hashes each line with SHA-256: any edit, removal, insertion
	// or reordering shows, except lines appended after the chain's end by
	// someone who recomputes the hashes.
	SHA256 = "sha256"
	// HMACSHA256 keys the hashes with a secret: without the key, no line
	// can be forged anywhere, the end included.
	HMACSHA256 = "hmac-sha256"
)

// HashField is what precedes a line's own hash: every line ends with
// ,"hash":"<64 hex digits>"}.
const HashField = `,"hash":"`

// HashLen is the length of a line's hash in hex.
const HashLen = 2 * sha256.Size

// LineHash computes the hash of a line's content (its bytes before the
// hash field) with key, or plain SHA-256 when key is empty.
func LineHash(key, content []byte) string {
	var h hash.Hash
	if len(key) > 0 {
		h = hmac.New(sha256.New, key)
	} else {
		h = sha256.New()
	}
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// SplitHash splits a chained line into the content its hash covers and the
// hash; ok is false when the line carries no hash field.
func SplitHash(line []byte) (content []byte, sum string, ok bool) {
	n := len(line) - len(HashField) - HashLen - 2
	if n < 1 || !bytes.HasSuffix(line, []byte(`"}`)) || string(line[n:n+len(HashField)]) != HashField {
		return nil, "", false
	}
	return line[:n], string(line[n+len(HashField) : len(line)-2]), true
}
