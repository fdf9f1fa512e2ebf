package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// TestRouterLimitsLoginsPerAddress: the router's login limit
// (AUTH_RATE_LIMIT token requests per 10 s) is kept per client address, an
// IPv4 address or an IPv6 /64 (haproxy.cfg, ipmask(32,64)), and counts
// token requests only. The router listens on both families here ("::"):
// its other tests reach it over IPv4 alone, where the mask changes nothing,
// so a rule that masked the address where it counts a request but not
// where it reads the count never refused an IPv6 client, and passed them.
// This machine has one IPv6 address, so the /64 is checked in the table
// itself (HAProxy's runtime API, on a socket an extra config file opens):
// ::1 is counted under ::, its /64, not under ::1 (with ipmask(32,128) the
// limit held per address, and a host could change its address at will).
// HAProxy 3 takes ::1 for an IPv4 address (below), so there only 2.6 tells
// the /64 from the /128.
func TestRouterLimitsLoginsPerAddress(t *testing.T) {
	haproxy := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	const limit = 3
	dir := t.TempDir()
	api := socketPath(t, "api.sock")
	extra := filepath.Join(dir, "api.cfg")
	if err := os.WriteFile(extra, []byte("global\n    stats socket "+api+" mode 600 level admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := startRouterWith(t, haproxy, stacktest.RepoRoot(t), startDropOnceBackend(t).socket, []string{"-f", extra},
		fmt.Sprint("AUTH_RATE_LIMIT=", limit), "PLATFORM_HOST=::").platform
	get := func(from, to, path string) int {
		t.Helper()
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, net.JoinHostPort(to, fmt.Sprint(port)))
			},
			DisableKeepAlives: true,
		}}
		var resp *http.Response
		var err error
		if path == "/auth/token" {
			resp, err = client.Post("http://router"+path, "application/json", strings.NewReader(`{"username":"alice","password":"password"}`))
		} else {
			resp, err = client.Get("http://router" + path)
		}
		if err != nil {
			t.Fatalf("%s from %s: %v", path, from, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	logins := func(from, to string) []int {
		var got []int
		for range limit + 2 {
			got = append(got, get(from, to, "/auth/token"))
		}
		return got
	}
	want := append(slices.Repeat([]int{http.StatusOK}, limit), http.StatusTooManyRequests, http.StatusTooManyRequests)

	// Other requests do not count towards it.
	for range 3 * limit {
		if status := get("127.0.0.1", "127.0.0.1", "/transaction/health"); status != http.StatusOK {
			t.Fatalf("GET /transaction/health: got %d, want 200", status)
		}
	}
	for _, c := range []struct{ name, from, to string }{
		{"an IPv4 client, after its other requests", "127.0.0.1", "127.0.0.1"},
		{"another IPv4 address", "127.0.0.2", "127.0.0.1"},
		{"an IPv6 client", "::1", "::1"},
	} {
		if got := logins(c.from, c.to); !slices.Equal(got, want) {
			t.Errorf("%s (%s): %d logins in a row: got %v, want %v", c.name, c.from, limit+2, got, want)
		}
	}

	conn, err := net.Dial("unix", api)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "show table platform\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	table, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, field := range strings.Fields(string(table)) {
		if key, ok := strings.CutPrefix(field, "key="); ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	// HAProxy 2.6 counts ::1 under ::, its /64; 3.4 takes ::1 for the
	// IPv4-compatible ::0.0.0.1 and masks it as IPv4, under ::ffff:0.0.0.1.
	// Either way not under ::1 itself, as it was with ipmask(32,128).
	v6 := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return strings.HasPrefix(k, "::ffff:127.") })
	if !slices.Equal(keys[len(keys)-2:], []string{"::ffff:127.0.0.1", "::ffff:127.0.0.2"}) ||
		len(v6) != 1 || (v6[0] != "::" && v6[0] != "::ffff:0.0.0.1") {
		t.Errorf("the login limit's table counts under %q, want ::ffff:127.0.0.1, ::ffff:127.0.0.2 and ::1's /64 (:: or, on HAProxy 3, ::ffff:0.0.0.1)\n%s", keys, table)
	}
}
