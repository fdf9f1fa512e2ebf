package loadgen

import (
	"bufio"
	"bytes"
	"strconv"
	"testing"
)

// FuzzH1Read checks the load generator's own HTTP/1.1 response parser on
// arbitrary bytes from the server: it never panics or loops; a response it
// accepts has the status its status line gives, exactly three digits
// (100-999), and a Retry-After that is not negative.
func FuzzH1Read(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), false)
	f.Add([]byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nT: v\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.0 503 Service Unavailable\r\n\r\n{\"error\":\"x\"}"), false)
	f.Add([]byte("HTTP/1.1 -12 OK\r\nContent-Length: 0\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		h := &h1conn{br: bufio.NewReaderSize(bytes.NewReader(data), 4<<10)}
		var out bytes.Buffer
		resp, _, err := h.read(&out, head)
		if err != nil {
			return
		}
		if resp.status < 100 || resp.status > 999 || !bytes.HasPrefix(data[9:], []byte(strconv.Itoa(resp.status))) ||
			(data[12] != ' ' && data[12] != '\r' && data[12] != '\n') {
			t.Fatalf("accepted status %d from %q", resp.status, data)
		}
		if resp.retryAfter < 0 {
			t.Fatalf("negative Retry-After %v", resp.retryAfter)
		}
	})
}
