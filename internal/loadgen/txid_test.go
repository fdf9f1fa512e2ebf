package loadgen

import (
	"slices"
	"testing"
	"unsafe"
)

func TestTxIDGivesBackTheIDItWasGiven(t *testing.T) {
	tests := []struct {
		name, id string
		compact  bool // held as its 16 bytes, no string of its own
	}{
		{"core-api's shape", "tx_0123456789abcdef0123456789abcdef", true},
		{"all zero", "tx_00000000000000000000000000000000", true},
		{"upper-case digits", "tx_0123456789ABCDEF0123456789abcdef", false},
		{"one digit short", "tx_0123456789abcdef0123456789abcde", false},
		{"one digit long", "tx_0123456789abcdef0123456789abcdef0", false},
		{"no prefix", "ab0123456789abcdef0123456789abcdef", false},
		{"not hex", "tx_0123456789abcdef0123456789abcdeg", false},
		{"a fake router's", "tx_same", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := parseTxID(tt.id)
			if got := id.String(); got != tt.id {
				t.Errorf("String: got %q, want %q", got, tt.id)
			}
			if got := id.odd == ""; got != tt.compact {
				t.Errorf("compact: got %v, want %v", got, tt.compact)
			}
		})
	}
}

// TestAcceptedTransactionsAreCompact: a run keeps one acceptedTx for every
// accepted transaction, 14.4 million in an hour at 4,000/s. With the id as a
// string of its own, a million took 242 MB of the generator's peak RSS more
// than a thousand did; 160 MB since (a million against a fake router in
// another process).
func TestAcceptedTransactionsAreCompact(t *testing.T) {
	if size := unsafe.Sizeof(acceptedTx{}); size > 48 {
		t.Errorf("acceptedTx is %d bytes, want at most 48", size)
	}
	const id = "tx_0123456789abcdef0123456789abcdef"
	if allocs := testing.AllocsPerRun(100, func() { _ = parseTxID(id) }); allocs != 0 {
		t.Errorf("parseTxID of core-api's shape: got %v allocations, want 0", allocs)
	}
}

func TestTxIDsSortSoThatEqualOnesAreNeighbours(t *testing.T) {
	ids := []string{"tx_ffffffffffffffffffffffffffffffff", "tx_same", "tx_00000000000000000000000000000001",
		"tx_same", "tx_ffffffffffffffffffffffffffffffff", "tx_other"}
	accepted := make([]acceptedTx, len(ids))
	for i, s := range ids {
		accepted[i] = acceptedTx{id: parseTxID(s)}
	}
	slices.SortFunc(accepted, func(a, b acceptedTx) int { return compareTxIDs(a.id, b.id) })
	if got := duplicateIDs(accepted); got != 2 {
		t.Errorf("duplicateIDs: got %d, want 2", got)
	}
	for _, s := range append(ids, "tx_00000000000000000000000000000002", "tx_none") {
		_, found := slices.BinarySearchFunc(accepted, parseTxID(s), func(tx acceptedTx, id txID) int { return compareTxIDs(tx.id, id) })
		if want := slices.Contains(ids, s); found != want {
			t.Errorf("binary search for %s: got %v, want %v", s, found, want)
		}
	}
}
