package loadgen

import (
	"bytes"
	"encoding/hex"
	"strings"
)

// txID is a transaction id as core-api gives it, "tx_" and 32 hex digits,
// held as its 16 bytes: a run keeps one for every accepted transaction, and
// as a string of its own each took 48 bytes of heap besides the string's
// header. An id of another shape (a fake router's, say) is kept whole in odd.
type txID struct {
	b   [16]byte
	odd string
}

// txIDPrefix starts every id core-api gives (txqueue's newID).
const txIDPrefix = "tx_"

// parseTxID keeps s as a txID; String gives s back.
func parseTxID(s string) txID {
	var id txID
	hexDigits := strings.TrimPrefix(s, txIDPrefix)
	if len(s) == len(txIDPrefix)+32 && len(hexDigits) == 32 && isLowerHex(hexDigits) {
		var digits [32]byte // a copy on the stack: []byte(hexDigits) would allocate
		copy(digits[:], hexDigits)
		if _, err := hex.Decode(id.b[:], digits[:]); err == nil {
			return id
		}
	}
	return txID{odd: s}
}

// isLowerHex: hex.Decode also takes upper-case digits, which String would
// not give back.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// String is the id as the API gave it.
func (id txID) String() string {
	if id.odd != "" {
		return id.odd
	}
	return txIDPrefix + hex.EncodeToString(id.b[:])
}

// compareTxIDs orders ids for sorting and binary search: the ids of
// core-api's shape first, by their bytes, then the others.
func compareTxIDs(a, b txID) int {
	if c := strings.Compare(a.odd, b.odd); c != 0 {
		return c
	}
	return bytes.Compare(a.b[:], b.b[:])
}
