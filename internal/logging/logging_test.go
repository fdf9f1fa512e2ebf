package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"DEBUG", slog.LevelDebug, false},
		{"", slog.LevelInfo, false},
		{"info", slog.LevelInfo, false},
		{" Info ", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"trace", 0, true},
		{"3", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("got %q, want it to name %q", err, tt.in)
			}
		})
	}
}

// records parses a buffer of JSON log lines.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestNewAddsServiceAndRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "auth-api", slog.LevelInfo)
	ctx := WithRequestID(context.Background(), "req-1")

	log.DebugContext(ctx, "hidden")                           // below the level
	log.InfoContext(ctx, "with id", "k", "v")                 // request id from ctx
	log.Info("without id")                                    // no ctx id
	log.With("user_id", 1).WarnContext(ctx, "derived")        // WithAttrs keeps the id
	log.WithGroup("g").ErrorContext(ctx, "grouped", "k", "v") // WithGroup keeps the id

	recs := records(t, &buf)
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4:\n%s", len(recs), buf.String())
	}
	tests := []struct {
		msg, level, requestID string
	}{
		{"with id", "INFO", "req-1"},
		{"without id", "INFO", ""},
		{"derived", "WARN", "req-1"},
		{"grouped", "ERROR", "req-1"},
	}
	for i, tt := range tests {
		rec := recs[i]
		if rec["msg"] != tt.msg || rec["level"] != tt.level || rec["service"] != "auth-api" {
			t.Errorf("record %d: got %v, want msg %q level %s service auth-api", i, rec, tt.msg, tt.level)
		}
		id, _ := rec["request_id"].(string)
		if g, ok := rec["g"].(map[string]any); ok && id == "" {
			id, _ = g["request_id"].(string)
		}
		if id != tt.requestID {
			t.Errorf("record %d (%s): got request_id %q, want %q", i, tt.msg, id, tt.requestID)
		}
	}
	if recs[2]["user_id"] != float64(1) {
		t.Errorf("got %v, want user_id 1 on the derived logger's record", recs[2])
	}
}

func TestRequestIDOfEmptyContext(t *testing.T) {
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("got %q, want \"\"", got)
	}
}
