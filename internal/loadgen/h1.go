package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// h1conn is one keep-alive HTTP/1.1 connection owned by one goroutine. It
// writes each request with a single write and parses just what a JSON API
// answer needs (status, Content-Length or chunked body, Connection: close,
// Retry-After), so the generator spends far less CPU per request than
// net/http's client, whose per-connection goroutines and channels cost more
// than the request itself on a 2-core machine shared with the system under
// test. Failed requests are never retried: a POST may have been processed.
type h1conn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	wbuf    []byte
	stop    func() bool
	idle    time.Time // when the last response was read in full
}

// idleCheckAfter is how long a connection may sit idle before a request
// first checks that the server has not closed it meanwhile (a keep-alive
// timeout: HAProxy's is 10 s). A request written to a connection the server
// already closed fails, and is not retried (it is a POST), so an open loop
// slower than one request per worker per keep-alive timeout would fail most
// of its requests; net/http's client watches its idle connections for the
// same reason. In a closed loop a connection is never idle this long.
const idleCheckAfter = time.Millisecond

// h1resp is the part of a response the generator looks at.
type h1resp struct {
	status     int
	retryAfter time.Duration
	replayed   bool // Idempotent-Replayed: true, core-api's answer for a key seen before
}

var errMalformed = errors.New("malformed HTTP response")

func (h *h1conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	h.c = c
	if h.br == nil {
		h.br = bufio.NewReaderSize(c, 4<<10)
	} else {
		h.br.Reset(c)
	}
	// Stopping the run unblocks a request in flight instead of waiting
	// for its timeout.
	h.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (h *h1conn) close() {
	if h.c != nil {
		h.stop()
		_ = h.c.Close()
		h.c = nil
	}
}

// do sends one request (body may be nil) and reads the response body into
// out. host is the Host header, path the request target.
func (h *h1conn) do(ctx context.Context, method, host, path string, body []byte, hdr reqHeaders, out *bytes.Buffer) (h1resp, error) {
	if err := ctx.Err(); err != nil {
		return h1resp{}, err
	}
	if h.c != nil && time.Since(h.idle) >= idleCheckAfter && (h.br.Buffered() > 0 || !idleConnAlive(h.c)) {
		// Closed by the server, or sent something unasked (such as a 408
		// before closing), which must not be read as this request's answer.
		h.close()
	}
	if h.c == nil {
		if err := h.dial(ctx); err != nil {
			return h1resp{}, err
		}
	}
	b := h.wbuf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: loadgen\r\n"...)
	if hdr.bearer != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, hdr.bearer...)
		b = append(b, "\r\n"...)
	}
	if hdr.idempotencyKey != "" {
		b = append(b, "Idempotency-Key: "...)
		b = append(b, hdr.idempotencyKey...)
		b = append(b, "\r\n"...)
	}
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	h.wbuf = b

	_ = h.c.SetDeadline(time.Now().Add(h.timeout))
	if err := ctx.Err(); err != nil {
		// Stopped since the check above: the stop's past deadline may have
		// come before the one just set, which would hold this request for
		// its whole timeout.
		h.close()
		return h1resp{}, err
	}
	if _, err := h.c.Write(b); err != nil {
		h.close()
		return h1resp{}, ctxErr(ctx, err)
	}
	resp, keep, err := h.read(out, method == "HEAD")
	if err != nil {
		h.close()
		return h1resp{}, ctxErr(ctx, err)
	}
	if !keep {
		h.close()
	} else {
		h.idle = time.Now()
	}
	return resp, nil
}

// ctxErr prefers the context's error when the run was stopped, so the
// interruption is not counted as a transport failure.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// read parses one response. keep reports whether the connection can be
// reused.
func (h *h1conn) read(out *bytes.Buffer, head bool) (resp h1resp, keep bool, err error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return resp, false, err
	}
	// "HTTP/1.1 200 OK\r\n": the status is exactly three digits, 100 to 999 (no
	// sign, as strconv.Atoi would take).
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		line[9] < '1' || line[9] > '9' || !isDigit(line[10]) || !isDigit(line[11]) ||
		(line[12] != ' ' && line[12] != '\r' && line[12] != '\n') {
		return resp, false, fmt.Errorf("%w: status line %.40q", errMalformed, line)
	}
	resp.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	keep = line[7] == '1'
	contentLength := int64(-1)
	chunked := false
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return resp, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return resp, false, fmt.Errorf("%w: header %.40q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			contentLength, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || contentLength < 0 {
				return resp, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			} else if asciiEqualFold(value, "keep-alive") {
				keep = true
			}
		case asciiEqualFold(name, "idempotent-replayed"):
			resp.replayed = asciiEqualFold(value, "true")
		case asciiEqualFold(name, "retry-after"):
			if s, err := strconv.Atoi(string(value)); err == nil && s > 0 {
				resp.retryAfter = time.Duration(s) * time.Second
			}
		}
	}
	out.Reset()
	switch {
	case head || resp.status == 204 || resp.status == 304 || resp.status/100 == 1:
	case chunked:
		err = h.readChunked(out)
	case contentLength >= 0:
		_, err = io.CopyN(out, h.br, contentLength)
	default:
		_, err = out.ReadFrom(h.br)
		keep = false
	}
	return resp, keep, err
}

func (h *h1conn) readChunked(out *bytes.Buffer) error {
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			// Trailers, then the final CRLF.
			for {
				l, err := h.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := io.CopyN(out, h.br, n); err != nil {
			return err
		}
		if _, err := h.br.Discard(2); err != nil {
			return err
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
