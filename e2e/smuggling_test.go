package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// smugglingCase is one connection's worth of bytes sent to the router at
// once: a request whose framing is ambiguous or malformed, with a second
// request hidden where one parser or another might take it for the next
// request (CL.TE, TE.CL, obfuscated Transfer-Encoding, odd Content-Length
// and chunk sizes, bare LF and CR, obs-fold, HTTP/1.0, Expect, Upgrade).
type smugglingCase struct {
	name string
	// raw is written as it is; the test then sends the sentinel request on
	// the same connection and reads every answer until the router closes.
	raw string
	// ok are statuses other than a 4xx that a request of this row may get
	// (a health check's 200, say). Every other answer must be a JSON 4xx.
	ok []int
	// want, when set, is the first answer's exact status (JSON), and
	// wantError its exact "error".
	want      int
	wantError string
	// parseError: HAProxy may refuse it while parsing, before any rule
	// runs; before 3.3 with its built-in HTML (TestHostileInput).
	parseError bool
	// silentOnNew: HAProxy 3.2.26 and 3.4.7 may close without any answer,
	// as they do for a request refused while parsing once it declared a
	// body with a Content-Length (RELIABILITY.md, Hostile input).
	silentOnNew bool
}

// smugglingSentinel follows every row on its connection: its 200 is the
// only answer that needs no 4xx, and a connection still in step ends with it.
const smugglingSentinel = "GET /transaction/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// smugglingCases builds the rows. hiddenLogin(id) and hiddenTx(id) are
// complete requests as a service would read them (paths without the
// router's prefix) with X-Request-ID "smuggled-<id>": the router replaces
// that header on every request it parses itself, so the id can reach a
// service's log only in a request the router never saw. A hidden login has
// the wrong password (auth-api logs each failure by request id); a hidden
// transaction is valid, so core-api would queue it.
func smugglingCases(hiddenLogin, hiddenTx func(id string) string) []smugglingCase {
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
	login := "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	tx := "POST /transaction/transaction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	var cases []smugglingCase
	add := func(c smugglingCase) { cases = append(cases, c) }
	n := 0
	next := func() string { n++; return fmt.Sprint(n) }

	// CL.TE, TE.CL and TE alone, with Transfer-Encoding spelled every way
	// a parser might take or leave. In CL.TE the Content-Length covers the
	// hidden request and the chunked body ends before it; in TE.CL the
	// chunked body holds it and the Content-Length (4) ends before it.
	// ignored: HAProxy takes the header for some other header, so that
	// the chunked body is read as the next request, which it refuses.
	transferEncodings := []struct {
		name, header        string
		parseError, ignored bool
	}{
		{"chunked", "Transfer-Encoding: chunked", false, false},
		{"xchunked", "Transfer-Encoding: xchunked", true, false},
		{"two spaces before chunked", "Transfer-Encoding:  chunked", false, false},
		{"chunked, identity", "Transfer-Encoding: chunked, identity", true, false},
		{"identity, chunked", "Transfer-Encoding: identity, chunked", true, false},
		{"a tab before chunked", "Transfer-Encoding:\tchunked", false, false},
		{"a vertical tab before chunked", "Transfer-Encoding:\x0bchunked", true, false},
		{"a vertical tab after chunked", "Transfer-Encoding: chunked\x0b", true, false},
		{"chunked, then a second TE header x", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x", true, false},
		{"x, then a second TE header chunked", "Transfer-Encoding: x\r\nTransfer-Encoding: chunked", true, false},
		{"two TE headers chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", true, false},
		{"a space before the colon", "Transfer-Encoding : chunked", true, false},
		{"folded into the header before (obs-fold)", "X-A: a\r\n Transfer-Encoding: chunked", false, true},
		{"value on a folded line", "Transfer-Encoding:\r\n chunked", false, false},
		{"lower-case name, upper-case value", "transfer-encoding: CHUNKED", false, false},
		{"quoted", "Transfer-Encoding: \"chunked\"", true, false},
		{"underscore in the name", "Transfer_Encoding: chunked", false, true},
		{"chunked with a parameter", "Transfer-Encoding: chunked;q=1", true, false},
		{"a bare CR inside", "Transfer-Encoding: chunked\rX: y", true, false},
	}
	for _, te := range transferEncodings {
		h := hiddenLogin(next())
		clte := "0\r\n\r\n" + h
		add(smugglingCase{name: "CL.TE, " + te.name, raw: login + fmt.Sprintf("Content-Length: %d\r\n", len(clte)) + te.header + "\r\n\r\n" + clte,
			parseError: te.parseError, silentOnNew: te.parseError})
		h = hiddenTx(next())
		add(smugglingCase{name: "TE.CL, " + te.name, raw: tx + "Content-Length: 4\r\n" + te.header + "\r\n\r\n" + chunk(h) + "0\r\n\r\n",
			parseError: te.parseError || te.ignored, silentOnNew: te.parseError})
		h = hiddenLogin(next())
		add(smugglingCase{name: "TE alone, " + te.name, raw: login + te.header + "\r\n\r\n" + chunk(h) + "0\r\n\r\n", parseError: te.parseError || te.ignored})
	}

	// Content-Length spelled oddly, the hidden request as the whole body.
	for _, cl := range []struct {
		name  string
		value func(n int) string
		bad   bool
	}{
		{"with a leading +", func(n int) string { return fmt.Sprintf("+%d", n) }, true},
		{"with leading spaces", func(n int) string { return fmt.Sprintf("   %d", n) }, false},
		{"in hex (0x)", func(n int) string { return fmt.Sprintf("0x%x", n) }, true},
		{"with leading zeros", func(n int) string { return fmt.Sprintf("000%d", n) }, false},
		{"as a list of the same value", func(n int) string { return fmt.Sprintf("%d, %d", n, n) }, false},
		{"as a list of two values", func(n int) string { return fmt.Sprintf("0, %d", n) }, true},
		{"with a space inside", func(n int) string { return fmt.Sprintf("%d %d", n, n) }, true},
		{"negative", func(int) string { return "-1" }, true},
		{"of 2^64 (0 once it overflows 64 bits)", func(int) string { return "18446744073709551616" }, true},
		{"of 23 digits", func(int) string { return "99999999999999999999999" }, true},
		{"empty", func(int) string { return "" }, true},
		{"with a vertical tab after it", func(n int) string { return fmt.Sprintf("%d\x0b", n) }, true},
		{"with a letter after it", func(n int) string { return fmt.Sprintf("%dx", n) }, true},
		{"zero, the hidden request after it", func(int) string { return "0" }, false},
	} {
		h := hiddenTx(next())
		add(smugglingCase{name: "Content-Length " + cl.name, raw: tx + "Content-Length: " + cl.value(len(h)) + "\r\n\r\n" + h, parseError: cl.bad})
	}
	h := hiddenTx(next())
	add(smugglingCase{name: "two equal Content-Lengths", raw: tx + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(h), len(h)) + h})
	h = hiddenTx(next())
	add(smugglingCase{name: "Content-Length continued on a folded line", raw: tx + fmt.Sprintf("Content-Length: 0\r\n %d\r\n\r\n", len(h)) + h, parseError: true})
	h = hiddenTx(next())
	add(smugglingCase{name: "Content-Length with a space before the colon", raw: tx + fmt.Sprintf("Content-Length : %d\r\n\r\n", len(h)) + h, parseError: true})

	// Chunk sizes and chunk lines.
	chunked := tx + "Transfer-Encoding: chunked\r\n\r\n"
	for _, c := range []struct {
		name string
		body func(h string) string
		bad  bool
	}{
		{"a chunk extension", func(h string) string { return fmt.Sprintf("%x;ext=\"x\"\r\n%s\r\n0\r\n\r\n", len(h), h) }, false},
		{"a chunk extension ended by a bare LF", func(h string) string { return fmt.Sprintf("%x;ext\n%s\r\n0\r\n\r\n", len(h), h) }, true},
		{"a chunk size in 0x hex", func(h string) string { return fmt.Sprintf("0x%x\r\n%s\r\n0\r\n\r\n", len(h), h) }, true},
		{"a chunk size with 19 leading zeros", func(h string) string { return fmt.Sprintf("0000000000000000000%x\r\n%s\r\n0\r\n\r\n", len(h), h) }, false},
		{"a chunk size that overflows 64 bits", func(h string) string { return fmt.Sprintf("1000000000000000%x\r\n%s\r\n0\r\n\r\n", len(h), h) }, true},
		{"a chunk size of 18 hex digits", func(h string) string { return "ffffffffffffffffff\r\n" + h + "\r\n0\r\n\r\n" }, true},
		{"a chunk size in upper case", func(h string) string { return fmt.Sprintf("%X\r\n%s\r\n0\r\n\r\n", len(h), h) }, false},
		{"a space after the chunk size", func(h string) string { return fmt.Sprintf("%x \r\n%s\r\n0\r\n\r\n", len(h), h) }, false},
		{"a negative chunk size", func(h string) string { return "-1\r\n" + h + "\r\n0\r\n\r\n" }, true},
		{"a chunk shorter than its data", func(h string) string { return "2\r\n" + h + "\r\n0\r\n\r\n" }, true},
		{"chunk lines ended by bare LFs", func(h string) string { return fmt.Sprintf("%x\n%s\n0\n\n", len(h), h) }, true},
		{"chunk lines ended by bare CRs", func(h string) string { return fmt.Sprintf("%x\r%s\r0\r\r", len(h), h) }, true},
		{"a trailer with X-Request-ID and Content-Length, the hidden request after it", func(h string) string {
			return chunk("{}") + "0\r\nX-Request-ID: smuggled-trailer\r\nContent-Length: 5\r\n\r\n" + h
		}, false},
		{"an extension on the last chunk, the hidden request after it", func(h string) string { return chunk("{}") + "0;x=y\r\n\r\n" + h }, false},
	} {
		add(smugglingCase{name: "chunked with " + c.name, raw: chunked + c.body(hiddenTx(next())), parseError: c.bad})
	}

	// Line ends and folding.
	h = hiddenTx(next())
	add(smugglingCase{name: "bare LF line ends", raw: strings.ReplaceAll(tx+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)), "\r\n", "\n") + h})
	h = hiddenTx(next())
	add(smugglingCase{name: "a bare CR hiding a second Content-Length", raw: tx + "X-A: a\rContent-Length: 0\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h, parseError: true})
	h = hiddenTx(next())
	add(smugglingCase{name: "a bare CR ending the request line", raw: "POST /transaction/transaction HTTP/1.1\rHost: x\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h, parseError: true})
	h = hiddenTx(next())
	add(smugglingCase{name: "an obs-fold header", raw: tx + "X-A: a\r\n b\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h})

	// HTTP/1.0. Go's server ignores Transfer-Encoding in an HTTP/1.0
	// request (golang/go#12785) and reads it as having no body, while HAProxy
	// passes it on chunked: the router refuses it (RFC 9112, section 6.1:
	// faulty framing).
	const http10TE = "Transfer-Encoding in an HTTP/1.0 request: its body cannot be framed"
	login10 := "POST /auth/token HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
	tx10 := "POST /transaction/transaction HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
	h = hiddenLogin(next())
	add(smugglingCase{name: "HTTP/1.0 login, chunked", raw: login10 + "Transfer-Encoding: chunked\r\n\r\n" + chunk(h) + "0\r\n\r\n", want: 400, wantError: http10TE})
	h = hiddenTx(next())
	add(smugglingCase{name: "HTTP/1.0 transaction, chunked and a Content-Length", raw: tx10 + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(h) + "0\r\n\r\n",
		want: 400, wantError: http10TE})
	h = hiddenTx(next())
	add(smugglingCase{name: "HTTP/1.0 keep-alive transaction, chunked", raw: tx10 + "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(h) + "0\r\n\r\n",
		want: 400, wantError: http10TE})
	h = hiddenTx(next())
	add(smugglingCase{name: "HTTP/1.0 keep-alive, the hidden request as its body", raw: tx10 + fmt.Sprintf("Connection: keep-alive\r\nContent-Length: %d\r\n\r\n", len(h)) + h})
	add(smugglingCase{name: "HTTP/1.0 keep-alive, then a second request", raw: tx10 + "Connection: keep-alive\r\nContent-Length: 2\r\n\r\n{}" + hiddenTx(next())})
	add(smugglingCase{name: "HTTP/1.0 without a length, a body after it", raw: tx10 + "\r\n" + hiddenTx(next())})
	// Go's server answers a request line of HTTP/0.x with its own text/plain
	// 505; the router answers it, in JSON.
	add(smugglingCase{name: "HTTP/0.9 request line, chunked", raw: "POST /auth/token HTTP/0.9\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hiddenLogin(next())) + "0\r\n\r\n",
		want: 505, wantError: "HTTP version not supported: HTTP/1.1 (or 1.0) only", ok: []int{505}})
	add(smugglingCase{name: "HTTP/0.9 GET", raw: "GET /transaction/health HTTP/0.9\r\nHost: x\r\n\r\n",
		want: 505, wantError: "HTTP version not supported: HTTP/1.1 (or 1.0) only", ok: []int{505}})
	// HTTP/0.0, whose version HAProxy 3.4.7's req.ver does not return (2.6's
	// does): it reached the service's Go server, which answered its
	// text/plain 505.
	add(smugglingCase{name: "HTTP/0.0 request line, chunked", raw: "POST /auth/token HTTP/0.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hiddenLogin(next())) + "0\r\n\r\n",
		want: 505, wantError: "HTTP version not supported: HTTP/1.1 (or 1.0) only", ok: []int{505}})
	add(smugglingCase{name: "HTTP/0.0 GET", raw: "GET /transaction/health HTTP/0.0\r\nHost: x\r\n\r\n",
		want: 505, wantError: "HTTP version not supported: HTTP/1.1 (or 1.0) only", ok: []int{505}})
	add(smugglingCase{name: "HTTP/1.2 request line, chunked", raw: "POST /auth/token HTTP/1.2\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hiddenLogin(next())) + "0\r\n\r\n"})

	// Expect: 100-continue.
	h = hiddenTx(next())
	add(smugglingCase{name: "Expect: 100-continue, the body sent at once", raw: tx + fmt.Sprintf("Expect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(h)) + h, ok: []int{100}})
	add(smugglingCase{name: "Expect: 100-continue, chunked", raw: tx + "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hiddenTx(next())) + "0\r\n\r\n", ok: []int{100}})
	h = hiddenTx(next())
	add(smugglingCase{name: "Expect: 100-continue over the router's limit, the body sent anyway", raw: tx + "Expect: 100-continue\r\nContent-Length: 9000\r\n\r\n" + h + strings.Repeat(" ", 9000-len(h))})

	// Connection header games.
	h = hiddenLogin(next())
	add(smugglingCase{name: "Connection: close, Content-Length", raw: login + fmt.Sprintf("Connection: close, Content-Length\r\nContent-Length: %d\r\n\r\n", len(h)) + h})
	h = hiddenLogin(next())
	add(smugglingCase{name: "Connection: Transfer-Encoding, with Content-Length", raw: login + fmt.Sprintf("Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n", len("0\r\n\r\n"+h)) + "0\r\n\r\n" + h})
	h = hiddenLogin(next())
	add(smugglingCase{name: "Connection: X-Request-ID", raw: login + fmt.Sprintf("Connection: X-Request-ID\r\nContent-Length: %d\r\n\r\n", len(h)) + h})

	// Upgrades: the services never switch protocols, so the router never
	// tunnels; what follows on the connection is parsed as HTTP/1 again.
	add(smugglingCase{name: "h2c upgrade", raw: "GET /auth/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", ok: []int{200}})
	add(smugglingCase{name: "h2c upgrade, then the HTTP/2 preface", raw: "GET /auth/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		ok: []int{200}, parseError: true})
	add(smugglingCase{name: "h2c upgrade on a transaction, then an unrouted request", raw: tx + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\n{}" + hiddenTx(next())})
	add(smugglingCase{name: "websocket upgrade, then an unrouted request", raw: "GET /auth/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + hiddenLogin(next()),
		ok: []int{200}})

	// Answers the router gives before the body: the body must be skipped
	// as a body, not read as the next request.
	h = hiddenTx(next())
	add(smugglingCase{name: "an unrouted path, the hidden request as its body", raw: "POST /other HTTP/1.1\r\nHost: x\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h})
	h = hiddenTx(next())
	add(smugglingCase{name: "a body over the router's limit holding the hidden request", raw: tx + "Content-Length: 9000\r\n\r\n" + h + strings.Repeat(" ", 9000-len(h))})
	h = hiddenTx(next())
	add(smugglingCase{name: "a path the router refuses, the hidden request as its body", raw: "POST /transaction//transaction HTTP/1.1\r\nHost: x\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h})
	h = hiddenTx(next())
	add(smugglingCase{name: "GET with the hidden request as its body", raw: "GET /transaction/health HTTP/1.1\r\nHost: x\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h, ok: []int{200}})
	add(smugglingCase{name: "GET with a chunked body", raw: "GET /transaction/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hiddenTx(next())) + "0\r\n\r\n", ok: []int{200}})
	h = hiddenTx(next())
	add(smugglingCase{name: "HEAD with the hidden request as its body", raw: "HEAD /transaction/health HTTP/1.1\r\nHost: x\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(h)) + h, ok: []int{200}})
	add(smugglingCase{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"})
	add(smugglingCase{name: "CONNECT", raw: "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n", parseError: true})
	add(smugglingCase{name: "absolute URI whose host is not the Host header", raw: "POST http://x/transaction/transaction HTTP/1.1\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}",
		parseError: true, silentOnNew: true})
	// The router parses the second one itself, with its own request id.
	add(smugglingCase{name: "a login pipelined after an invalid transaction", raw: tx + "Content-Length: 2\r\n\r\n{}" + strings.Replace(hiddenLogin(next()), "POST /token ", "POST /auth/token ", 1)})
	return cases
}

// connAnswer is one answer read off a connection.
type connAnswer struct {
	status int
	ct     string
	body   string
}

func (a connAnswer) String() string {
	if strings.HasPrefix(a.ct, "application/json") || a.body == "" {
		return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(a.body))
	}
	return fmt.Sprintf("%d (%s)", a.status, a.ct)
}

// exchangeAll writes raw on one connection from local (an address on the
// loopback, so that each row has a login limit of its own), and reads every
// answer until the router closes it, or timeout.
func exchangeAll(addr, local, raw string, timeout time.Duration) ([]connAnswer, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	go func() { _, _ = io.WriteString(conn, raw) }()
	br := bufio.NewReader(conn)
	var out []connAnswer
	for range 50 {
		// The answer to a HEAD has no body, whatever its Content-Length.
		var req *http.Request
		if len(out) == 0 && strings.HasPrefix(raw, "HEAD ") {
			req = &http.Request{Method: http.MethodHead}
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return out, err
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		out = append(out, connAnswer{status: res.StatusCode, ct: res.Header.Get("Content-Type"), body: string(body)})
	}
	return out, errors.New("more than 50 answers")
}

// TestRouterRefusesRequestSmuggling sends each smuggling row through the
// real stack on a connection of its own, then the sentinel, and checks:
// every answer is a JSON 4xx (or the row's own success, or the sentinel's
// 200), except HAProxy's known gaps for requests it refuses while parsing;
// no service ever logs a request with a "smuggled-" request id (the
// router replaces X-Request-ID on every request it parses, so only a
// request hidden from it could carry one); the transaction stream does
// not move, though every hidden transaction is valid. Then a client that
// pipelines more logins than the limit on one keep-alive connection gets
// exactly AUTH_RATE_LIMIT of them through.
func TestRouterRefusesRequestSmuggling(t *testing.T) {
	st := startFaultStack(t, stackOptions{env: map[string]string{"LOG_LEVEL": "debug"}})
	htmlParseErrors := !haproxyAtLeast(t, 3, 3)
	silentParseErrors := haproxyAtLeast(t, 3, 2)

	// Tokens live 30 s at most: a fresh one every 10 s, so that a hidden
	// transaction that reached core-api would be queued, not refused.
	var tok string
	var tokAt time.Time
	token := func() string {
		if time.Since(tokAt) > 10*time.Second {
			tok, tokAt = st.login(t, "alice"), time.Now()
		}
		return tok
	}
	hiddenLogin := func(id string) string {
		body := `{"username":"alice","password":"wrong"}`
		return fmt.Sprintf("POST /token HTTP/1.1\r\nHost: x\r\nX-Request-ID: smuggled-%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
	}
	hiddenTx := func(id string) string {
		body := fmt.Sprintf(`{"token":%q,"amount":100,"currency":"USD"}`, token())
		return fmt.Sprintf("POST /transaction HTTP/1.1\r\nHost: x\r\nX-Request-ID: smuggled-%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
	}

	start := st.mark(t)
	cases := smugglingCases(hiddenLogin, hiddenTx)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A loopback address of its own: the login rows must reach
			// auth-api, not the limit of 127.0.0.1.
			local := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
			answers, err := exchangeAll(st.addr, local, c.raw+smugglingSentinel, 15*time.Second)
			t.Logf("answers: %v", answers)
			if err != nil {
				t.Fatalf("after %d answers: %v", len(answers), err)
			}
			if len(answers) == 0 {
				if c.silentOnNew && silentParseErrors {
					t.Logf("known gap: HAProxy 3.2.26 and 3.4.7 close without an answer a request they refuse after its Content-Length")
					return
				}
				t.Fatalf("the router closed the connection without an answer")
			}
			if c.want != 0 {
				first := answers[0]
				if first.status == http.StatusContinue && len(answers) > 1 {
					first = answers[1]
				}
				if first.status != c.want {
					t.Errorf("got %v first, want %d %q", first, c.want, c.wantError)
				} else {
					var body struct {
						Error string `json:"error"`
					}
					if err := json.Unmarshal([]byte(first.body), &body); err != nil || body.Error != c.wantError {
						t.Errorf("got %v first, want %d {\"error\":%q}", first, c.want, c.wantError)
					}
				}
			}
			for _, a := range answers {
				switch {
				case a.status == http.StatusOK && strings.Contains(a.body, `"status":"pass"`):
					// the sentinel, or a row's own health check
				case slices.Contains(c.ok, a.status):
				case a.status >= 400 && a.status <= 499 && strings.HasPrefix(a.ct, "application/json"):
				case c.parseError && htmlParseErrors && strings.HasPrefix(a.ct, "text/html") && a.status >= 400 && a.status <= 499:
					t.Logf("known gap: HAProxy < 3.3 answers a request it cannot parse with its built-in HTML")
				default:
					t.Errorf("got %v, want a JSON 4xx", a)
				}
			}
		})
	}

	// Every spelling of a login that reaches auth-api's POST /token counts
	// towards the limit, pipelined on one keep-alive connection too.
	t.Run("pipelined logins over the limit on one connection", func(t *testing.T) {
		const limit, extra = 20, 5 // AUTH_RATE_LIMIT in the test stack (newStack)
		body := `{"username":"alice","password":"wrong"}`
		spellings := []string{
			fmt.Sprintf("POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
			fmt.Sprintf("POST /auth/token?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
			fmt.Sprintf("POST /auth/tok%%65n HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
			fmt.Sprintf("POST http://x/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
			fmt.Sprintf("POST /auth/token HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
			fmt.Sprintf("POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body),
			fmt.Sprintf("POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
		}
		var raw strings.Builder
		for i := range limit + extra {
			raw.WriteString(spellings[i%len(spellings)])
		}
		answers, err := exchangeAll(st.addr, "127.0.200.1", raw.String()+smugglingSentinel, 30*time.Second)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(answers), err)
		}
		counts := map[int]int{}
		for _, a := range answers {
			if a.status != http.StatusContinue {
				counts[a.status]++
			}
		}
		if counts[http.StatusUnauthorized] != limit || counts[http.StatusTooManyRequests] != extra || counts[http.StatusOK] != 1 || len(counts) != 3 {
			t.Errorf("%d pipelined logins and the sentinel: got %v (status: count), want %d 401s, %d 429s and the sentinel's 200", limit+extra, counts, limit, extra)
		}
		t.Logf("answers (status: count, 100 Continue left out): %v", counts)
	})

	t.Run("no service saw a hidden request", func(t *testing.T) {
		time.Sleep(500 * time.Millisecond) // process-compose writes the last lines
		for _, svc := range []string{"auth-api", "core-api"} {
			sc := bufio.NewScanner(strings.NewReader(st.readLog(t, svc)))
			sc.Buffer(make([]byte, 1<<20), 4<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"request_id":"smuggled-`) {
					t.Errorf("%s read a request the router never parsed: %.300s", svc, sc.Text())
				}
			}
		}
		if end := st.mark(t); end.lastID != start.lastID {
			t.Errorf("a hidden transaction was queued: the stream went from %s to %s", start, end)
		}
	})
	t.Logf("%d smuggling rows through the router", len(cases))
}
