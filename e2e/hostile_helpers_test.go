package e2e

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// b64 is the JWT segment encoding: base64url without padding.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signer makes the signature segment of a JWT from its signing input.
type signer func(signingInput string) []byte

// hmacSigner signs with HMAC over h (sha256.New, sha512.New384) and key.
func hmacSigner(h func() hash.Hash, key []byte) signer {
	return func(in string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

// rsaSigner signs RS256 with a freshly generated key that the platform never saw.
func rsaSigner(t *testing.T) signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return func(in string) []byte {
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// noSignature is alg "none": an empty signature segment.
func noSignature(string) []byte { return nil }

// forge builds a JWT from raw JSON header and payload (so claims can have any
// JSON type, duplicate keys included) and a signer.
func forge(header, payload string, sign signer) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

// tokenAttack is a token the platform must refuse, and the status and error
// text core-api must answer with.
type tokenAttack struct {
	name       string
	token      string
	wantStatus int
	wantError  string
}

// tokenAttacks are the token attack vectors: wrong algorithms, wrong keys,
// lifetimes the issuer never gives, missing and mistyped claims, tampering.
// valid is a real token for alice from the platform, used for tampering;
// secret is the stack's JWT secret, so that only the attacked property is wrong.
func tokenAttacks(t *testing.T, secret []byte, valid string) []tokenAttack {
	t.Helper()
	now := time.Now().Unix()
	hs256 := hmacSigner(sha256.New, secret)
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	claims := func(extra string) string {
		return fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":true,"exp":%d%s}`, now+25, extra)
	}
	plain := func(body string) string { return forge(hdr, body, hs256) }
	parts := strings.Split(valid, ".")
	if len(parts) != 3 {
		t.Fatalf("platform token %q has %d segments, want 3", valid, len(parts))
	}
	const (
		algNotAllowed = "The specified alg value is not allowed"
		badSignature  = "Signature verification failed."
	)
	return []tokenAttack{
		{"alg none", forge(`{"alg":"none","typ":"JWT"}`, claims(""), noSignature), 422, algNotAllowed},
		{"alg None", forge(`{"alg":"None","typ":"JWT"}`, claims(""), noSignature), 422, algNotAllowed},
		{"alg none with HS256 signature", forge(`{"alg":"none","typ":"JWT"}`, claims(""), hs256), 422, algNotAllowed},
		{"alg HS384", forge(`{"alg":"HS384","typ":"JWT"}`, claims(""), hmacSigner(sha512.New384, secret)), 422, algNotAllowed},
		{"alg HS512", forge(`{"alg":"HS512","typ":"JWT"}`, claims(""), hmacSigner(sha512.New, secret)), 422, algNotAllowed},
		{"alg RS256 with a foreign key", forge(`{"alg":"RS256","typ":"JWT"}`, claims(""), rsaSigner(t)), 422, algNotAllowed},
		{"alg RS256 header over an HS256 signature", forge(`{"alg":"RS256","typ":"JWT"}`, claims(""), hs256), 422, algNotAllowed},
		{"alg hs256 lower case", forge(`{"alg":"hs256","typ":"JWT"}`, claims(""), hs256), 422, algNotAllowed},
		{"duplicate alg, none last", forge(`{"alg":"HS256","alg":"none"}`, claims(""), hs256), 422, algNotAllowed},
		{"no alg", forge(`{"typ":"JWT"}`, claims(""), hs256), 422, "No algorithm was specified in the JWS header."},
		{"another secret", forge(hdr, claims(""), hmacSigner(sha256.New, []byte("an-attacker-guessed-this-secret-32b"))), 422, badSignature},
		{"empty secret", forge(hdr, claims(""), hmacSigner(sha256.New, nil)), 422, badSignature},
		{"no exp", plain(`{"user_id":1,"username":"alice","enabled":true}`), 422, "Token is missing the exp claim"},
		{"exp far future", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":true,"exp":%d}`, now+365*24*3600)), 422, "Token expires too far in the future"},
		{"exp beyond int64", plain(`{"user_id":1,"username":"alice","enabled":true,"exp":1e400}`), 422, "Token expires too far in the future"},
		{"lifetime longer than 30 s", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":true,"exp":%d,"iat":%d}`, now+25, now-3600)), 422, "Token lifetime is longer than 30 seconds"},
		{"expired", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":true,"exp":%d}`, now-60)), 422, "Signature has expired."},
		{"future nbf", plain(claims(fmt.Sprintf(`,"nbf":%d`, now+20))), 422, "The token is not yet valid (nbf)"},
		{"future iat", plain(claims(fmt.Sprintf(`,"iat":%d`, now+20))), 422, "The token is not yet valid (iat)"},
		{"exp as string", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":true,"exp":"%d"}`, now+25)), 422, "Expiration Time claim (exp) must be an integer."},
		{"exp null", plain(`{"user_id":1,"username":"alice","enabled":true,"exp":null}`), 422, "Expiration Time claim (exp) must be an integer."},
		{"nbf as bool", plain(claims(`,"nbf":true`)), 422, "Not Before claim (nbf) must be an integer."},
		{"missing user_id", plain(fmt.Sprintf(`{"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token is missing the user_id claim"},
		{"user_id as string", plain(fmt.Sprintf(`{"user_id":"1","username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be an integer"},
		{"user_id as float", plain(fmt.Sprintf(`{"user_id":1.5,"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be an integer"},
		{"user_id as exponent", plain(fmt.Sprintf(`{"user_id":1e0,"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be an integer"},
		{"user_id zero", plain(fmt.Sprintf(`{"user_id":0,"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be a positive integer"},
		{"user_id negative", plain(fmt.Sprintf(`{"user_id":-1,"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be a positive integer"},
		{"user_id beyond int64", plain(fmt.Sprintf(`{"user_id":99999999999999999999999,"username":"alice","enabled":true,"exp":%d}`, now+25)), 422, "Token claim user_id must be a positive integer"},
		{"missing username", plain(fmt.Sprintf(`{"user_id":1,"enabled":true,"exp":%d}`, now+25)), 422, "Token is missing the username claim"},
		{"username as number", plain(fmt.Sprintf(`{"user_id":1,"username":7,"enabled":true,"exp":%d}`, now+25)), 422, "Token claim username must be a string"},
		{"missing enabled", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","exp":%d}`, now+25)), 422, "Token is missing the enabled claim"},
		{"enabled as string", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":"true","exp":%d}`, now+25)), 422, "Token claim enabled must be a boolean"},
		{"enabled as number", plain(fmt.Sprintf(`{"user_id":1,"username":"alice","enabled":1,"exp":%d}`, now+25)), 422, "Token claim enabled must be a boolean"},
		{"disabled user", plain(fmt.Sprintf(`{"user_id":3,"username":"charlie","enabled":false,"exp":%d}`, now+25)), 403, "User not enabled for transactions"},
		{"payload is an array", plain(`[1,2,3]`), 422, "Invalid payload string: must be a json object"},
		{"header is not JSON", b64("{alg:HS256") + "." + parts[1] + "." + parts[2], 422, "Invalid header string: must be a json object"},
		{"tampered payload: user_id 2", parts[0] + "." + b64(fmt.Sprintf(`{"user_id":2,"username":"becky","enabled":true,"exp":%d}`, now+25)) + "." + parts[2], 422, badSignature},
		{"tampered payload: enabled for charlie", parts[0] + "." + b64(fmt.Sprintf(`{"user_id":3,"username":"charlie","enabled":true,"exp":%d}`, now+25)) + "." + parts[2], 422, badSignature},
		{"tampered header: kid added", b64(`{"alg":"HS256","typ":"JWT","kid":"../../dev/null"}`) + "." + parts[1] + "." + parts[2], 422, badSignature},
		{"signature stripped", parts[0] + "." + parts[1] + ".", 422, badSignature},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:8], 422, badSignature},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!!!", 422, "Invalid crypto padding"},
		{"payload not base64", parts[0] + ".%%%." + parts[2], 422, "Invalid payload padding"},
		{"two segments", parts[0] + "." + parts[1], 422, "Not enough segments"},
		{"four segments", valid + ".x", 422, "Too many segments"},
		{"garbage", "not-a-token", 422, "Not enough segments"},
	}
}

// rawResponse is what a raw exchange got back: the parsed response, its
// body, and how long it took.
type rawResponse struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// errClosedWithoutAnswer is rawExchange's error when the server closed the
// connection before sending a single byte.
var errClosedWithoutAnswer = errors.New("connection closed without an answer")

// rawExchange writes req to addr over one TCP connection (exactly as given,
// so that paths and headers reach the router without Go's client cleaning
// them), then reads one response. Every step is bounded by timeout. When
// bodyLen > 0, that many bytes of body are streamed after req.
func rawExchange(addr string, req []byte, bodyLen int64, timeout time.Duration) (rawResponse, error) {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return rawResponse{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(timeout))
	// The request is written in the background: a server may answer (and
	// close) before it has read a large body, and that answer is what counts.
	wrote := make(chan error, 1)
	go func() {
		if _, err := conn.Write(req); err != nil {
			wrote <- err
			return
		}
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent := int64(0); sent < bodyLen; {
			n := min(int64(len(chunk)), bodyLen-sent)
			if _, err := conn.Write(chunk[:n]); err != nil {
				wrote <- err
				return
			}
			sent += n
		}
		wrote <- nil
	}()
	counted := &countingReader{r: conn}
	res, err := http.ReadResponse(bufio.NewReader(counted), nil)
	if err != nil {
		if counted.n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			err = errClosedWithoutAnswer
		}
		werr := "request written"
		select {
		case e := <-wrote:
			if e != nil {
				werr = "write: " + e.Error()
			}
		default:
			werr = "request still being written"
		}
		return rawResponse{}, fmt.Errorf("read response after %s (%s): %w", time.Since(start).Round(time.Millisecond), werr, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return rawResponse{}, fmt.Errorf("read body: %w", err)
	}
	return rawResponse{status: res.StatusCode, header: res.Header, body: body, elapsed: time.Since(start)}, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// httpRequest renders a raw HTTP/1.1 request. Content-Length is added for a
// non-nil body unless headers already set it or Transfer-Encoding.
func httpRequest(method, target, host string, headers []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	hasLen := false
	for _, h := range headers {
		lower := strings.ToLower(h)
		if strings.HasPrefix(lower, "content-length:") || strings.HasPrefix(lower, "transfer-encoding:") {
			hasLen = true
		}
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if body != nil && !hasLen {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
