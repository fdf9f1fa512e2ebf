package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
)

// TestLogsGoesOnWhenAPieceGoesWhileItIsPrinted: a piece deleted between
// the list of the log's pieces and its read (a `stack up` or `reset` in
// another terminal deletes the logs; a user cleans them up) is left out,
// and the rest is still printed: `stack logs` does not fail on it. Pieces
// are deleted and made again here for as long as copyWholeLog is called,
// so that some calls find one gone in between.
func TestLogsGoesOnWhenAPieceGoesWhileItIsPrinted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "core-api.log")
	if err := os.WriteFile(path, []byte("current\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2026, 12, 7, 6, 0, 0, 0, time.Local)
	var pieces []string
	for i := range 8 {
		pieces = append(pieces, rotatedlog.PieceName(path, stamp.Add(time.Duration(i)*time.Second)))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			piece := pieces[i%len(pieces)]
			_ = os.Remove(piece)
			_ = os.WriteFile(piece, []byte(fmt.Sprintf("piece %d\n", i%len(pieces))), 0o600)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for n := 0; n < 2000 && time.Now().Before(deadline); n++ {
		var b bytes.Buffer
		copied, err := copyWholeLog(&b, path, "")
		if err != nil || !copied {
			t.Fatalf("copyWholeLog, call %d: %v, %v (printed %q)", n, copied, err, b.String())
		}
		if !strings.HasSuffix(b.String(), "current\n") {
			t.Fatalf("call %d: got %q, want the log's line last", n, b.String())
		}
	}
}
