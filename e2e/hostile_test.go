package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileCase is one request the platform must refuse: a JSON 4xx (never a
// 500, never a hang), nothing queued, and a log line that says why.
type hostileCase struct {
	name string
	// req is the raw request, exactly as sent to the router.
	req []byte
	// stream, when > 0, is how many body bytes follow req (for bodies too big
	// to build in memory).
	stream int64
	// timeout bounds the whole exchange (default 10 s).
	timeout time.Duration
	// wantStatus, when set, is the exact status; otherwise any 4xx.
	wantStatus int
	// wantError, when set, is the exact "error" text.
	wantError string
	// parseError marks requests HAProxy refuses while parsing them, before
	// any rule runs, and logs as <BADREQ> without a request id. From 3.3
	// (and in 3.2 releases with the backport) HAProxy answers them with
	// haproxy.cfg's errorfile for the status; older ones send their
	// built-in HTML (a 400 mostly; 413, 422) whatever the configuration
	// says (haproxy/haproxy#3032).
	parseError bool
	// closedOnNewHAProxy marks the parse errors HAProxy 3.2.26 and 3.4.7
	// answer with nothing, closing the connection: those met after a
	// Content-Length other than 0 (two different Content-Lengths; a header
	// without a colon after one), which no setting changes. Only these may
	// go unanswered; any other request closed without an answer fails.
	closedOnNewHAProxy bool
}

// hostileBuilder makes requests for the cases, for one stack.
type hostileBuilder struct {
	host  string
	token string // a valid token for alice
}

func (b hostileBuilder) post(path, contentType string, body []byte, headers ...string) []byte {
	if contentType != "" {
		headers = append([]string{"Content-Type: " + contentType}, headers...)
	}
	return httpRequest("POST", path, b.host, headers, body)
}

// tx posts a transaction body to the router's transaction route.
func (b hostileBuilder) tx(body string) []byte {
	return b.post("/transaction/transaction", "application/json", []byte(body))
}

// txFields posts {"token": <valid>, "amount": amount, "currency": currency},
// with amount and currency as raw JSON.
func (b hostileBuilder) txFields(amount, currency string) []byte {
	return b.tx(fmt.Sprintf(`{"token":%q,"amount":%s,"currency":%s}`, b.token, amount, currency))
}

// validTx is a body the platform would accept, for cases where only the
// envelope (path, headers, content type) is hostile.
func (b hostileBuilder) validTx() []byte {
	return []byte(fmt.Sprintf(`{"token":%q,"amount":100,"currency":"USD"}`, b.token))
}

// hostileCases is the whole table: bodies, types, sizes, headers, paths.
func hostileCases(b hostileBuilder) []hostileCase {
	const (
		notJSON   = "Request body is not valid JSON"
		notObject = "Request body must be a JSON object"
		amountBad = "Amount must be a positive integer (a JSON number or a string of digits)"
		amountBig = "Amount must not exceed 1000000000"
		curCode   = "Invalid currency code"
		tokType   = "Token must be a string"
	)
	tok := fmt.Sprintf("%q", b.token)
	// The router takes bodies of up to 8 kB (haproxy.cfg, D83): the wide and
	// long ones below come in two sizes, one that reaches core-api and one
	// the router refuses; internal/txrequest's tests give core-api the large
	// ones, and 100,000 nested arrays (past encoding/json's depth of 10,000,
	// which 8 kB cannot reach: fewer are valid JSON, and queued).
	deep := `{"token":` + tok + `,"amount":100,"currency":"USD","x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	manyKeys := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"token":` + tok + `,"currency":"USD"`)
		for i := range n {
			fmt.Fprintf(&b, `,"k%d":1`, i)
		}
		return b.String() + "}"
	}
	const routerLimit = "Request body is larger than 8192 bytes, the limit at the router"

	cases := []hostileCase{
		// Malformed JSON.
		{name: "truncated JSON", req: b.tx(`{"token":`), wantStatus: 422, wantError: notJSON},
		{name: "unquoted keys", req: b.tx(`{token:"x",amount:100,currency:"USD"}`), wantStatus: 422, wantError: notJSON},
		{name: "trailing comma", req: b.tx(`{"token":` + tok + `,"amount":100,"currency":"USD",}`), wantStatus: 422, wantError: notJSON},
		{name: "two objects", req: b.tx(`{"token":` + tok + `,"amount":100,"currency":"USD"}{}`), wantStatus: 422, wantError: notJSON},
		{name: "trailing garbage", req: b.tx(`{"token":` + tok + `,"amount":100,"currency":"USD"} x`), wantStatus: 422, wantError: notJSON},
		{name: "not JSON at all", req: b.tx(`amount=100&currency=USD`), wantStatus: 422},
		{name: "binary", req: b.tx("\x00\x01\x02\xff"), wantStatus: 422},
		{name: "byte order mark", req: b.tx("\xef\xbb\xbf" + `{"token":` + tok + `,"amount":100,"currency":"USD"}`), wantStatus: 422},
		{name: "empty body", req: b.tx(""), wantStatus: 422},
		{name: "white space body", req: b.tx(" \r\n\t "), wantStatus: 422},
		{name: "NaN amount", req: b.txFields("NaN", `"USD"`), wantStatus: 422, wantError: notJSON},
		{name: "Infinity amount", req: b.txFields("Infinity", `"USD"`), wantStatus: 422, wantError: notJSON},
		{name: "100k nested arrays", req: b.tx(deep), wantStatus: 413, wantError: routerLimit},
		{name: "700 keys, amount missing", req: b.tx(manyKeys(700)), wantStatus: 422, wantError: "Amount is blank"},
		{name: "40k keys, amount missing", req: b.tx(manyKeys(40_000)), wantStatus: 413, wantError: routerLimit},
		{name: "invalid UTF-8 currency", req: b.txFields("100", "\"\xff\xfeD\""), wantStatus: 422},

		// Arrays, null and other non-objects.
		{name: "null body", req: b.tx(`null`), wantStatus: 422, wantError: notObject},
		{name: "empty array", req: b.tx(`[]`), wantStatus: 422, wantError: notObject},
		{name: "array of a valid transaction", req: b.tx(`[{"token":` + tok + `,"amount":100,"currency":"USD"}]`), wantStatus: 422, wantError: notObject},
		{name: "string body", req: b.tx(`"{\"token\":\"x\"}"`), wantStatus: 422, wantError: notObject},
		{name: "number body", req: b.tx(`100`), wantStatus: 422, wantError: notObject},
		{name: "boolean body", req: b.tx(`true`), wantStatus: 422, wantError: notObject},

		// Wrong types for the token.
		{name: "token number", req: b.tx(`{"token":123,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: tokType},
		{name: "token true", req: b.tx(`{"token":true,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: tokType},
		{name: "token array", req: b.tx(`{"token":[` + tok + `],"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: tokType},
		{name: "token object", req: b.tx(`{"token":{"t":` + tok + `},"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: tokType},
		{name: "token null", req: b.tx(`{"token":null,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: "Token is blank"},
		{name: "token false", req: b.tx(`{"token":false,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: "Token is blank"},
		{name: "token zero", req: b.tx(`{"token":0,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: "Token is blank"},
		{name: "token missing", req: b.tx(`{"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: "Token is blank"},
		{name: "token key in another case", req: b.tx(`{"Token":` + tok + `,"amount":100,"currency":"USD"}`), wantStatus: 422, wantError: "Token is blank"},
		{name: "token space", req: b.tx(`{"token":" ","amount":100,"currency":"USD"}`), wantStatus: 422},
		{name: "token padded with spaces", req: b.tx(`{"token":" ` + b.token + ` ","amount":100,"currency":"USD"}`), wantStatus: 422},

		// Wrong types and values for the amount.
		{name: "amount true", req: b.txFields("true", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount false", req: b.txFields("false", `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount null", req: b.txFields("null", `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount array", req: b.txFields("[100]", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount object", req: b.txFields(`{"value":100}`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount float", req: b.txFields("1.5", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount integral float", req: b.txFields("100.0", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount exponent", req: b.txFields("1e2", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount huge exponent", req: b.txFields("1e999999999", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount negative", req: b.txFields("-100", `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount negative zero", req: b.txFields("-0", `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount zero float", req: b.txFields("0.0", `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount huge digits", req: b.txFields(strings.Repeat("9", 400), `"USD"`), wantStatus: 422, wantError: amountBig},
		{name: "amount above max", req: b.txFields("1000000001", `"USD"`), wantStatus: 422, wantError: amountBig},
		{name: "amount beyond int64", req: b.txFields("9223372036854775808", `"USD"`), wantStatus: 422, wantError: amountBig},
		{name: "amount string huge digits", req: b.txFields(`"`+strings.Repeat("9", 7_000)+`"`, `"USD"`), wantStatus: 422, wantError: amountBig},
		{name: "amount string of 100k digits", req: b.txFields(`"`+strings.Repeat("9", 100_000)+`"`, `"USD"`), wantStatus: 413, wantError: routerLimit},
		{name: "amount string negative", req: b.txFields(`"-100"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string plus", req: b.txFields(`"+100"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string float", req: b.txFields(`"1.0"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string exponent", req: b.txFields(`"1e2"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string hex", req: b.txFields(`"0x10"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string spaces", req: b.txFields(`" 100 "`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string underscore", req: b.txFields(`"1_000"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string full-width digits", req: b.txFields(`"１００"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string Arabic-Indic digits", req: b.txFields(`"١٠٠"`, `"USD"`), wantStatus: 422, wantError: amountBad},
		{name: "amount string zeros", req: b.txFields(`"000"`, `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount string empty", req: b.txFields(`""`, `"USD"`), wantStatus: 422, wantError: "Amount is blank"},
		{name: "amount missing", req: b.tx(`{"token":` + tok + `,"currency":"USD"}`), wantStatus: 422, wantError: "Amount is blank"},

		// Wrong types and look-alikes for the currency.
		{name: "currency number", req: b.txFields("100", "840"), wantStatus: 422, wantError: curCode},
		{name: "currency true", req: b.txFields("100", "true"), wantStatus: 422, wantError: curCode},
		{name: "currency array", req: b.txFields("100", `["USD"]`), wantStatus: 422, wantError: curCode},
		{name: "currency object", req: b.txFields("100", `{"code":"USD"}`), wantStatus: 422, wantError: curCode},
		{name: "currency null", req: b.txFields("100", "null"), wantStatus: 422, wantError: "Currency is blank"},
		{name: "currency missing", req: b.tx(`{"token":` + tok + `,"amount":100}`), wantStatus: 422, wantError: "Currency is blank"},
		{name: "currency lower case", req: b.txFields("100", `"usd"`), wantStatus: 422, wantError: curCode},
		{name: "currency mixed case", req: b.txFields("100", `"Usd"`), wantStatus: 422, wantError: curCode},
		{name: "currency two letters", req: b.txFields("100", `"US"`), wantStatus: 422, wantError: curCode},
		{name: "currency four letters", req: b.txFields("100", `"USDD"`), wantStatus: 422, wantError: curCode},
		{name: `currency "USD\n"`, req: b.txFields("100", `"USD\n"`), wantStatus: 422, wantError: curCode},
		{name: `currency "USD\u0000"`, req: b.txFields("100", `"USD\u0000"`), wantStatus: 422, wantError: curCode},
		{name: "currency leading space", req: b.txFields("100", `" USD"`), wantStatus: 422, wantError: curCode},
		{name: "currency full-width USD", req: b.txFields("100", `"ＵＳＤ"`), wantStatus: 422, wantError: curCode},
		{name: "currency Cyrillic DZE for S", req: b.txFields("100", `"UЅD"`), wantStatus: 422, wantError: curCode},
		{name: "currency Cyrillic IE for E (EUR)", req: b.txFields("100", `"ЕUR"`), wantStatus: 422, wantError: curCode},
		{name: "currency Greek Alpha (AUD)", req: b.txFields("100", `"ΑUD"`), wantStatus: 422, wantError: curCode},
		{name: "currency zero-width space", req: b.txFields("100", `"U\u200bSD"`), wantStatus: 422, wantError: curCode},
		{name: "currency combining diaeresis", req: b.txFields("100", `"U\u0308SD"`), wantStatus: 422, wantError: curCode},
		{name: "currency escaped newline, lower case", req: b.txFields("100", `"us\nd"`), wantStatus: 422, wantError: curCode},

		// Content types.
		{name: "missing Content-Type", req: b.post("/transaction/transaction", "", b.validTx()), wantStatus: 415},
		{name: "Content-Type text/plain", req: b.post("/transaction/transaction", "text/plain", b.validTx()), wantStatus: 415},
		{name: "form-encoded body", req: b.post("/transaction/transaction", "application/x-www-form-urlencoded",
			[]byte("token="+b.token+"&amount=100&currency=USD"))},

		// Sizes.
		{name: "17 MB body", req: b.post("/transaction/transaction", "application/json", nil, "Content-Length: 17825792"),
			stream: 17 << 20, timeout: 20 * time.Second, wantStatus: 413},
		{name: "2 MB JSON body", req: b.tx(`{"token":` + tok + `,"amount":100,"currency":"USD","pad":"` + strings.Repeat("a", 2<<20) + `"}`),
			wantStatus: 413},
		{name: "17 MB chunked body", req: b.post("/transaction/transaction", "application/json",
			chunked(17<<20), "Transfer-Encoding: chunked"), timeout: 20 * time.Second, wantStatus: 413},
		{name: "one 20 kB header", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"X-Junk: "+strings.Repeat("a", 20<<10)), parseError: true},
		{name: "1000 headers", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			repeatHeaders(1000)...), parseError: true},
		{name: "80 kB cookie", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Cookie: "+strings.Repeat("c=1; ", 16<<10)), parseError: true},

		// Framing and header tricks.
		{name: "control character in a header", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"X-Bad: a\x01b")},
		{name: "header without colon", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"NoColonHere"), parseError: true},
		{name: "two different Content-Lengths", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Content-Length: 5", fmt.Sprintf("Content-Length: %d", len(b.validTx()))), parseError: true, closedOnNewHAProxy: true},
		{name: "header without colon after a Content-Length", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			fmt.Sprintf("Content-Length: %d", len(b.validTx())), "NoColonHere"), parseError: true, closedOnNewHAProxy: true},
		{name: "Content-Length and chunked", req: b.post("/transaction/transaction", "application/json",
			[]byte("0\r\n\r\n"), "Content-Length: 5", "Transfer-Encoding: chunked")},
		// Go's HTTP server answers an expectation other than 100-continue
		// itself, before any handler, with a 417 and no body.
		{name: "unknown Expect", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Expect: 200-ok"), wantStatus: 417},
		// HAProxy's HTTP/1 layer answers a transfer-coding other than
		// chunked with a 422. An HTTP/1.0 GET, HEAD or DELETE with a body
		// gets a 413 from haproxy.cfg's first rule (the HTTP/1 layer, which
		// refused it while parsing, answered nothing on 3.2.26 and 3.4.7).
		{name: "Transfer-Encoding gzip, chunked", req: b.post("/transaction/transaction", "application/json",
			[]byte("0\r\n\r\n"), "Transfer-Encoding: gzip, chunked"), parseError: true, wantStatus: 422},
		{name: "HTTP 1.0 GET with a body", req: []byte("GET /transaction/health HTTP/1.0\r\nHost: " + b.host +
			"\r\nContent-Length: 2\r\n\r\n{}"), wantStatus: 413, wantError: http10BodyRefused},
		{name: "HTTP 1.0 GET with a chunked body", req: []byte("GET /transaction/health HTTP/1.0\r\nHost: " + b.host +
			"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), wantStatus: 413, wantError: http10BodyRefused},
		{name: "HTTP 1.0 DELETE with a body", req: []byte("DELETE /transaction/transaction HTTP/1.0\r\nHost: " + b.host +
			"\r\nContent-Length: 2\r\n\r\n{}"), wantStatus: 413, wantError: http10BodyRefused},
		// HTTP/1.0 has no chunked coding, and the services' Go server reads
		// such a request as bodiless: the router refuses it (RFC 9112, 6.1;
		// more framings in TestRouterRefusesRequestSmuggling).
		{name: "HTTP 1.0 POST, chunked", req: []byte("POST /transaction/transaction HTTP/1.0\r\nHost: " + b.host +
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b.validTx()), b.validTx())),
			wantStatus: 400, wantError: "Transfer-Encoding in an HTTP/1.0 request: its body cannot be framed"},
		{name: "garbage request line", req: []byte("GARBAGE\r\n\r\n"), parseError: true},
		// The router speaks HTTP/1 only (bind ... proto h1), which every
		// test here covers; it spoke HTTP/2 to a client that began with
		// its preface (h2c with prior knowledge), a second parser that no
		// test covered (a security review).
		{name: "HTTP/2 preface", req: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), parseError: true},
		{name: "HTTP/9.9", req: bytes.Replace(b.tx(`{}`), []byte("HTTP/1.1"), []byte("HTTP/9.9"), 1)},
		// Idempotency-Key: checked before anything is queued, and logged.
		{name: "Idempotency-Key too long", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Idempotency-Key: "+strings.Repeat("k", 256)), wantStatus: 400, wantError: "Idempotency-Key must be 1 to 255 printable ASCII characters"},
		{name: "Idempotency-Key not ASCII", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Idempotency-Key: k\xc3\xa9y"), wantStatus: 400, wantError: "Idempotency-Key must be 1 to 255 printable ASCII characters"},
		{name: "two Idempotency-Keys", req: b.post("/transaction/transaction", "application/json", b.validTx(),
			"Idempotency-Key: k1", "Idempotency-Key: k2"), wantStatus: 400, wantError: "Idempotency-Key must be given once"},
		{name: "method GET on the transaction route", req: httpRequest("GET", "/transaction/transaction", b.host, nil, nil), wantStatus: 405},
		{name: "method DELETE on the token route", req: httpRequest("DELETE", "/auth/token", b.host, nil, nil), wantStatus: 405},

		// Router path tricks, each carrying a valid transaction or login.
		{name: "path /auth/../transaction/transaction", req: b.post("/auth/../transaction/transaction", "application/json", b.validTx())},
		{name: "path /auth/%2e%2e/transaction/transaction", req: b.post("/auth/%2e%2e/transaction/transaction", "application/json", b.validTx())},
		{name: "path /auth/..%2ftransaction%2ftransaction", req: b.post("/auth/..%2ftransaction%2ftransaction", "application/json", b.validTx())},
		{name: "path /transaction/../transaction/transaction", req: b.post("/transaction/../transaction/transaction", "application/json", b.validTx())},
		{name: "path //auth/token", req: b.post("//auth/token", "application/json", []byte(`{"username":"alice","password":"password"}`))},
		{name: "path //transaction/transaction", req: b.post("//transaction/transaction", "application/json", b.validTx())},
		{name: "path /transaction//transaction", req: b.post("/transaction//transaction", "application/json", b.validTx())},
		{name: "path /transaction/./transaction", req: b.post("/transaction/./transaction", "application/json", b.validTx())},
		{name: "path /transaction%2ftransaction", req: b.post("/transaction%2ftransaction", "application/json", b.validTx())},
		{name: "path /transaction/transaction%2f", req: b.post("/transaction/transaction%2f", "application/json", b.validTx())},
		{name: "path /transaction/transaction%00", req: b.post("/transaction/transaction%00", "application/json", b.validTx())},
		{name: "path /transaction/transaction/", req: b.post("/transaction/transaction/", "application/json", b.validTx())},
		{name: "path /TRANSACTION/transaction", req: b.post("/TRANSACTION/transaction", "application/json", b.validTx())},
		{name: "path /transactionx/transaction", req: b.post("/transactionx/transaction", "application/json", b.validTx())},
		{name: "path /auth/../../../etc/passwd", req: httpRequest("GET", "/auth/../../../etc/passwd", b.host, nil, nil)},
		{name: "path with a fragment", req: b.post("/transaction/transaction#x", "application/json", b.validTx()), parseError: true},
		{name: "path 8 kB long", req: httpRequest("GET", "/transaction/"+strings.Repeat("a", 8<<10), b.host, nil, nil), wantStatus: 404},
		{name: "path 70 kB long", req: httpRequest("GET", "/transaction/"+strings.Repeat("a", 70<<10), b.host, nil, nil), parseError: true},
		// JSON escaping doubles these in the router's log line, which must stay whole JSON.
		{name: "path of 600 backslashes", req: httpRequest("GET", "/transaction/"+strings.Repeat(`\`, 600), b.host, nil, nil)},
		{name: "path of 600 double quotes", req: httpRequest("GET", "/auth/"+strings.Repeat(`"`, 600), b.host, nil, nil)},
		{name: "status id with a glob", req: httpRequest("GET", "/transaction/transactions/tx_*", b.host,
			[]string{"Authorization: Bearer " + b.token}, nil), wantStatus: 404},
		{name: "status id with encoded slashes", req: httpRequest("GET", "/transaction/transactions/..%2f..%2fhealth", b.host,
			[]string{"Authorization: Bearer " + b.token}, nil)},
		{name: "status without a token", req: httpRequest("GET", "/transaction/transactions/tx_00000000000000000000000000000000", b.host, nil, nil),
			wantStatus: 422, wantError: "Token is blank"},

		// The token route.
		// Not strings: as in the original (its == was False), no such user, or
		// alice's wrong password.
		{name: "login username array", req: b.post("/auth/token", "application/json", []byte(`{"username":["alice"],"password":"password"}`)),
			wantStatus: 404, wantError: "User not found"},
		{name: "login password number", req: b.post("/auth/token", "application/json", []byte(`{"username":"alice","password":12345}`)),
			wantStatus: 401, wantError: "Invalid password"},
		{name: "login null body", req: b.post("/auth/token", "application/json", []byte(`null`)), wantStatus: 422},
		{name: "login malformed", req: b.post("/auth/token", "application/json", []byte(`{"username":"alice",`)), wantStatus: 422},
		{name: "login 2 MB username", req: b.post("/auth/token", "application/json",
			[]byte(`{"username":"`+strings.Repeat("a", 2<<20)+`","password":"x"}`)), wantStatus: 413},
		{name: "login injection-looking username", req: b.post("/auth/token", "application/json",
			[]byte(`{"username":"alice' OR '1'='1","password":"x"}`)), wantStatus: 404, wantError: "User not found"},
	}
	return cases
}

// tokenCases turns the token attack vectors into hostile cases, each sent in
// the body and as a bearer token.
func tokenCases(b hostileBuilder, attacks []tokenAttack) []hostileCase {
	var out []hostileCase
	for _, a := range attacks {
		out = append(out,
			hostileCase{name: "token " + a.name, req: b.tx(fmt.Sprintf(`{"token":%q,"amount":100,"currency":"USD"}`, a.token)),
				wantStatus: a.wantStatus, wantError: a.wantError},
			hostileCase{name: "bearer " + a.name, req: b.post("/transaction/transaction", "application/json",
				[]byte(`{"amount":100,"currency":"USD"}`), "Authorization: Bearer "+a.token),
				wantStatus: a.wantStatus, wantError: a.wantError},
		)
	}
	return out
}

// chunked returns n bytes of body in chunked transfer coding (64 kB chunks).
func chunked(n int) []byte {
	var b bytes.Buffer
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for n > 0 {
		c := min(n, len(chunk))
		fmt.Fprintf(&b, "%x\r\n", c)
		b.Write(chunk[:c])
		b.WriteString("\r\n")
		n -= c
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// repeatHeaders returns n distinct small headers.
func repeatHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-H%d: %s", i, strings.Repeat("v", 20))
	}
	return out
}

// hostileResult is what one case got, for the log check afterwards.
type hostileResult struct {
	c         hostileCase
	res       rawResponse
	requestID string
}

// TestHostileInput sends every hostile case through the router and checks
// each answer is a JSON 4xx in bounded time, the stream did not grow, and a
// log line (the service's, or the router's for what it refused itself) says
// why. A slowloris-style client runs alongside and must be cut off.
func TestHostileInput(t *testing.T) {
	st := startFaultStack(t, stackOptions{})
	tok := st.login(t, "alice")
	b := hostileBuilder{host: st.addr, token: tok}
	cases := append(hostileCases(b), tokenCases(b, tokenAttacks(t, st.secret, tok))...)
	// Two known gaps of HAProxy's HTTP/1 layer, for requests it refuses while
	// parsing them (RELIABILITY.md, Hostile input): before 3.3 it answers
	// them with its built-in HTML; the 3.2 and 3.4 releases of October 2026
	// (3.2.26, 3.4.7) send nothing at all and close when they refuse it
	// after a Content-Length other than 0 (two different Content-Lengths; a
	// header without a colon after one), which no setting changes. Each is
	// logged and counted; the router's <BADREQ> log lines are checked for all.
	htmlParseErrors := !haproxyAtLeast(t, 3, 3)
	silentParseErrors := haproxyAtLeast(t, 3, 2)

	slow := make(chan slowResult, 1)
	go func() { slow <- slowHeaders(st.addr, 500*time.Millisecond, 40*time.Second) }()

	start := st.mark(t)
	var results []hostileResult
	refusedEarly, knownGap := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			timeout := c.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			before := st.mark(t)
			res, err := rawExchange(st.addr, c.req, c.stream, timeout)
			if c.closedOnNewHAProxy && silentParseErrors && errors.Is(err, errClosedWithoutAnswer) {
				refusedEarly++
				knownGap++
				t.Logf("known gap: HAProxy 3.2.26 and 3.4.7 close the connection without an answer when they refuse a request while parsing after a Content-Length other than 0 (Debian's builds; 3.5-dev5 of 2026-08-21 answers with the errorfile)")
				return
			}
			if err != nil {
				t.Fatalf("no answer (timeout %s): %v", timeout, err)
			}
			if after := st.mark(t); after.lastID != before.lastID {
				t.Errorf("the request reached the queue: stream went from %s to %s", before, after)
			}
			if c.parseError && htmlParseErrors && isHAProxyBuiltinHTML(res) {
				refusedEarly++
				knownGap++
				t.Logf("known gap: HAProxy < 3.3 answers a request it cannot parse with its built-in HTML (haproxy/haproxy#3032)")
				return
			}
			checkJSONError(t, res, c.wantStatus, c.wantError)
			id := res.header.Get("X-Request-ID")
			if id == "" {
				// Refused by HAProxy while parsing, before the request had an
				// id: the router's <BADREQ> lines are its record (below).
				refusedEarly++
				return
			}
			results = append(results, hostileResult{c: c, res: res, requestID: id})
		})
	}

	t.Run("slow headers", func(t *testing.T) {
		r := <-slow
		t.Logf("slow-header client: sent %d bytes over %s, then %s", r.sent, r.elapsed.Round(time.Millisecond), r.outcome)
		if !r.cutOff {
			t.Fatalf("the router kept a slow-header connection open for %s (%s)", r.elapsed, r.outcome)
		}
		if r.status != 0 && (r.status < 400 || r.status > 499) {
			t.Fatalf("slow-header client got %d, want a 4xx or a closed connection", r.status)
		}
	})

	t.Run("log lines say why", func(t *testing.T) {
		logs := st.waitLogs(t)
		for _, r := range results {
			why := logReason(logs, r)
			if why == "" {
				t.Errorf("%s: got %d %q, but no log line with request id %q says why", r.c.name, r.res.status, clipBytes(r.res.body), r.requestID)
			}
		}
		// Requests HAProxy could not parse have no request id: count its
		// <BADREQ> lines instead (400, 408, and from 3.1 also 414 or 431).
		if bad := len(logs[badRequestKey]); bad < refusedEarly {
			t.Errorf("router logged %d unparsable requests, want at least %d", bad, refusedEarly)
		}
		t.Logf("log reasons: %d by request id, %d unparsable requests in the router's log", len(results), len(logs[badRequestKey]))
	})
	end := st.mark(t)
	if end.lastID != start.lastID {
		t.Errorf("over the whole table, the stream went from %s to %s", start, end)
	}
	t.Logf("%d hostile requests through the router: %d answered with a request id, %d refused while parsing (%d of them a known gap: HAProxy's built-in HTML before 3.3, no answer at all from 3.2.26 and 3.4.7); stream before: %s; after: %s",
		len(cases), len(results), refusedEarly, knownGap, start, end)
}

// isHAProxyBuiltinHTML reports whether res is one of HAProxy's built-in HTML
// 4xx answers (a 400 mostly; 413 and 422 for the requests above).
func isHAProxyBuiltinHTML(res rawResponse) bool {
	return res.status >= 400 && res.status <= 499 && strings.HasPrefix(res.header.Get("Content-Type"), "text/html") &&
		bytes.Contains(res.body, []byte(fmt.Sprintf("<h1>%d ", res.status)))
}

// haproxyAtLeast reports whether `haproxy -v` is at least major.minor.
func haproxyAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	out, err := exec.Command("haproxy", "-v").Output()
	if err != nil {
		t.Fatalf("haproxy -v: %v", err)
	}
	m := regexp.MustCompile(`version (\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("haproxy -v: no version in %q", out)
	}
	maj, _ := strconv.Atoi(string(m[1]))
	mn, _ := strconv.Atoi(string(m[2]))
	return maj > major || maj == major && mn >= minor
}

// checkJSONError checks that res is a 4xx (exactly wantStatus when set) with
// a JSON body {"error": <non-empty>} (exactly wantError when set), and Allow
// on a 405.
func checkJSONError(t *testing.T, res rawResponse, wantStatus int, wantError string) {
	t.Helper()
	if res.status < 400 || res.status > 499 {
		t.Fatalf("got status %d, want a 4xx; body %q", res.status, clipBytes(res.body))
	}
	if wantStatus != 0 && res.status != wantStatus {
		t.Errorf("got status %d, want %d; body %q", res.status, wantStatus, clipBytes(res.body))
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("got Content-Type %q, want application/json; body %q", ct, clipBytes(res.body))
	}
	if res.status == http.StatusMethodNotAllowed && res.header.Get("Allow") == "" {
		t.Errorf("got a 405 without Allow (RFC 9110, section 15.5.6)")
	}
	var body struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || body.Error == nil || *body.Error == "" {
		t.Fatalf("got body %q, want a JSON object with a non-empty \"error\"", clipBytes(res.body))
	}
	if wantError != "" && *body.Error != wantError {
		t.Errorf("got error %q, want %q", *body.Error, wantError)
	}
}

func clipBytes(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// slowResult is what a slow-header client saw.
type slowResult struct {
	sent    int
	elapsed time.Duration
	cutOff  bool   // the router answered or closed before the client finished
	status  int    // the router's status, 0 when it only closed
	outcome string // for the log
}

// slowHeaders opens a connection and sends an endless header one byte per
// interval, as a slowloris client would, until the router answers or closes,
// or max passes (then cutOff is false).
func slowHeaders(addr string, interval, max time.Duration) slowResult {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowResult{outcome: "dial: " + err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(max))
	first := []byte("POST /auth/token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	if _, err := conn.Write(first); err != nil {
		return slowResult{outcome: "write: " + err.Error()}
	}
	sent := len(first)
	answered := make(chan slowResult, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		switch {
		case err == nil:
			res.Body.Close()
			answered <- slowResult{cutOff: true, status: res.StatusCode, outcome: "answered " + res.Status}
		case time.Since(start) < max-time.Second:
			answered <- slowResult{cutOff: true, outcome: "connection closed: " + err.Error()}
		default:
			answered <- slowResult{outcome: "still open: " + err.Error()}
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case r := <-answered:
			r.sent, r.elapsed = sent, time.Since(start)
			return r
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err == nil {
				sent++
			}
		}
	}
}
