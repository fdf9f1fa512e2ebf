package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tokens "github.com/acme-payments/platform/internal/token"
)

// client is the platform's HTTP API as a merchant sees it. Requests go
// through sessions: each worker owns one, and with it one keep-alive
// connection per host, never shared and never closed under load.
type client struct {
	std     *http.Client // for https, or when Config.StdClient is set
	timeout time.Duration
	token   endpoint
	tx      endpoint
	status  endpoint
}

// endpoint is a parsed URL.
type endpoint struct {
	url  string // as configured
	addr string // host:port to dial
	host string // Host header
	path string // request target
	fast bool   // plain http: use h1conn rather than net/http
}

func parseEndpoint(raw string, std bool) endpoint {
	ep := endpoint{url: raw}
	u, err := url.Parse(raw)
	if err != nil {
		return ep
	}
	ep.host = u.Host
	ep.addr = u.Host
	if u.Port() == "" {
		ep.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	ep.path = u.RequestURI()
	ep.fast = !std && u.Scheme == "http"
	return ep
}

func newClient(cfg *Config, conns int) *client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          conns + 16,
		MaxIdleConnsPerHost:   conns + 16,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ResponseHeaderTimeout: cfg.RequestTimeout,
	}
	return &client{
		std:     &http.Client{Transport: tr, Timeout: cfg.RequestTimeout},
		timeout: cfg.RequestTimeout,
		token:   parseEndpoint(cfg.TokenURL, cfg.StdClient),
		tx:      parseEndpoint(cfg.TxURL, cfg.StdClient),
		status:  parseEndpoint(cfg.StatusURL, cfg.StdClient),
	}
}

func (c *client) close() { c.std.CloseIdleConnections() }

// session is one goroutine's connections and response buffer.
type session struct {
	cl    *client
	conns map[string]*h1conn
	buf   bytes.Buffer
}

func (c *client) session() *session { return &session{cl: c} }

// close closes the session's connections.
func (s *session) close() {
	for _, h := range s.conns {
		h.close()
	}
}

// reqHeaders are a request's optional headers; an empty one is not sent.
type reqHeaders struct {
	bearer         string // Authorization: Bearer
	idempotencyKey string // Idempotency-Key
}

// do sends one request to ep (with suffix appended to its path) and reads
// the whole response body into s.buf.
func (s *session) do(ctx context.Context, method string, ep *endpoint, suffix string, body []byte, hdr reqHeaders) (h1resp, error) {
	if ep.fast {
		h := s.conns[ep.addr]
		if h == nil {
			if s.conns == nil {
				s.conns = make(map[string]*h1conn, 2)
			}
			h = &h1conn{addr: ep.addr, timeout: s.cl.timeout}
			s.conns[ep.addr] = h
		}
		return h.do(ctx, method, ep.host, ep.path+suffix, body, hdr, &s.buf)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ep.url+suffix, rd)
	if err != nil {
		return h1resp{}, err
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if hdr.bearer != "" {
		req.Header["Authorization"] = []string{"Bearer " + hdr.bearer}
	}
	if hdr.idempotencyKey != "" {
		req.Header["Idempotency-Key"] = []string{hdr.idempotencyKey}
	}
	resp, err := s.cl.std.Do(req)
	if err != nil {
		return h1resp{}, err
	}
	defer resp.Body.Close()
	out := h1resp{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 {
		out.retryAfter = time.Duration(sec) * time.Second
	}
	s.buf.Reset()
	_, err = s.buf.ReadFrom(resp.Body)
	return out, err
}

// token is a bearer token and the time it stops being accepted.
type token struct {
	value    string
	exp      time.Time
	disabled bool // the token says enabled: false (no transactions allowed)
}

// errStatus is a non-200 answer.
type errStatus struct {
	status     int
	retryAfter time.Duration
}

func (e *errStatus) Error() string { return "HTTP " + strconv.Itoa(e.status) }

// fetchToken logs in once. A non-200 answer is an *errStatus.
func (s *session) fetchToken(ctx context.Context, body []byte) (token, error) {
	resp, err := s.do(ctx, http.MethodPost, &s.cl.token, "", body, reqHeaders{})
	if err != nil {
		return token{}, err
	}
	if resp.status != http.StatusOK {
		return token{}, &errStatus{status: resp.status, retryAfter: resp.retryAfter}
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(s.buf.Bytes(), &out); err != nil || out.Token == "" {
		return token{}, fmt.Errorf("token response %.100q: no token", s.buf.Bytes())
	}
	exp, disabled := jwtClaims(out.Token, time.Now())
	return token{value: out.Token, exp: exp, disabled: disabled}, nil
}

// jwtClaims reads the exp and enabled claims without verifying the signature
// (the merchant cannot: it does not hold the secret). Without a readable exp
// the contract's lifetime (internal/token's TTL) from now is assumed; disabled is true only
// for an explicit "enabled": false.
func jwtClaims(tok string, now time.Time) (exp time.Time, disabled bool) {
	exp = now.Add(tokens.TTL)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return exp, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return exp, false
	}
	var claims struct {
		Exp     json.Number `json:"exp"`
		Enabled *bool       `json:"enabled"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return exp, false
	}
	disabled = claims.Enabled != nil && !*claims.Enabled
	if e, err := claims.Exp.Float64(); err == nil && e > 0 {
		exp = time.Unix(0, int64(e*1e9))
	}
	return exp, disabled
}

// loginBody is the JSON body of POST /auth/token.
func loginBody(user, password string) []byte {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return b
}

// merchant is one merchant session: a user and its current token, shared by
// the workers that belong to it and refreshed by whichever worker first sees
// it close to expiry.
type merchant struct {
	user    int // index into Config.Users
	login   []byte
	refresh time.Duration

	mu  sync.Mutex
	tok token
}

// get returns a token valid for at least the refresh margin, logging in when
// needed. The caller's latency histogram and error counts are fed here, so
// token refreshes under load are measured like any other request.
func (m *merchant) get(ctx context.Context, r *runner, s *session) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok.value != "" && time.Until(m.tok.exp) > m.refresh {
		return m.tok.value, nil
	}
	tok, err := r.login(ctx, m.login, s)
	if err != nil {
		return "", err
	}
	m.tok = tok
	return tok.value, nil
}

// invalidate drops the token if it is still v, after the API refused it.
func (m *merchant) invalidate(v string) {
	m.mu.Lock()
	if m.tok.value == v {
		m.tok = token{}
	}
	m.mu.Unlock()
}

// isCanceled reports whether err is only the run being stopped.
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
