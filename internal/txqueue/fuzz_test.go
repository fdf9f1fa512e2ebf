package txqueue

import (
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"
)

// FuzzDecodeMessage checks decodeMessage, the connector's decoder of stream
// entries (written by core-api, but read from a Redis anyone with the socket
// can write to), on arbitrary field values: it never panics; a failure keeps
// the stream id and an id only when it is a valid one (the status record may
// be keyed by it); a success has a valid id, positive user id and amount,
// three capital letters, a positive timestamp and a bounded request id, and
// survives entryOf (the dead-letter copy) unchanged.
func FuzzDecodeMessage(f *testing.F) {
	f.Add("tx_0123456789abcdef0123456789abcdef", "1", "100", "USD", "req-1", "1733000000000000000")
	f.Add("tx_0123456789ABCDEF0123456789abcdef", "1", "100", "USD", "", "1")
	f.Add("tx_0123456789abcdef0123456789abcdef", "+1", "0100", "usd", "", "-5")
	f.Add("tx_0123456789abcdef0123456789abcdef", "9223372036854775808", "1e3", "US", "\xff", "0")
	f.Fuzz(func(t *testing.T, id, userID, amount, currency, requestID, enqueuedAt string) {
		e := redis.XMessage{ID: "1-0", Values: map[string]any{
			fieldID: id, fieldUserID: userID, fieldAmount: amount, fieldCurrency: currency,
			fieldRequestID: requestID, fieldEnqueuedAt: enqueuedAt,
		}}
		m, err := decodeMessage(e)
		if m.StreamID != e.ID {
			t.Fatalf("stream id: got %q, want %q", m.StreamID, e.ID)
		}
		if err != nil {
			if m.ID != "" && !ValidID(m.ID) {
				t.Fatalf("failed with an invalid id kept: %q (%v)", m.ID, err)
			}
			return
		}
		switch {
		case !ValidID(m.ID):
			t.Fatalf("accepted id %q", m.ID)
		case m.UserID <= 0 || m.Amount <= 0:
			t.Fatalf("accepted user id %d, amount %d", m.UserID, m.Amount)
		case !validCurrency(m.Currency):
			t.Fatalf("accepted currency %q", m.Currency)
		case m.EnqueuedAt.UnixNano() <= 0:
			t.Fatalf("accepted enqueued_at %v", m.EnqueuedAt)
		case len(m.RequestID) > 128:
			t.Fatalf("request id of %d bytes kept", len(m.RequestID))
		}
		again, err := decodeMessage(entryOf(m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("entryOf then decodeMessage: got %+v, %v; want %+v", again, err, m)
		}
	})
}
