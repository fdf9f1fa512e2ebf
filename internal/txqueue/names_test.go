package txqueue

import "testing"

func TestDeadLetterStreamOf(t *testing.T) {
	for _, tc := range []struct {
		stream, want string
	}{
		{Stream, DeadLetterStream},
		{"transactions", "transactions:dead"},
		{"TestQueueProbe/dead", "TestQueueProbe/dead:dead"},
	} {
		t.Run(tc.stream, func(t *testing.T) {
			if got := DeadLetterStreamOf(tc.stream); got != tc.want {
				t.Errorf("DeadLetterStreamOf(%q): got %q, want %q", tc.stream, got, tc.want)
			}
		})
	}
}
