package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// TestSecurity checks the stack's security properties on a running stack,
// not in documentation: Redis reachable only through its 0700 unix socket,
// every listener on loopback, no secret in the repository or in any log nor
// in the environment of a process that does not use it, and
// password guessing cut off at the router with failed logins logged without
// the password. The brute force runs after every check that logs in: it uses
// up the address's quota.
func TestSecurity(t *testing.T) {
	// Every log level the services have: a secret or password written only
	// at debug is in the log of whoever sets LOG_LEVEL=debug (stack.env).
	// And a token rate limit other than the default (20, also HAProxy's own
	// fallback in haproxy.cfg), so that a router ignoring AUTH_RATE_LIMIT fails.
	// HAProxy's public side on a loopback address other than 127.0.0.1
	// (where the stack.env default would hide it), so that a listener that
	// follows PLATFORM_HOST but should stay on 127.0.0.1 (the stats page,
	// a service) shows: with PLATFORM_HOST=0.0.0.0 it would be exposed.
	platformHost := "127.0.0.1"
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		ln.Close()
		platformHost = "127.0.0.2"
	}
	st := startFaultStack(t, stackOptions{env: map[string]string{
		"LOG_LEVEL":       "debug",
		"AUTH_RATE_LIMIT": strconv.Itoa(securityRateLimit),
		"PLATFORM_HOST":   platformHost,
	}})

	t.Run("Redis only through a 0700 unix socket", func(t *testing.T) {
		sock := filepath.Join(st.stateDir, "redis", "redis.sock")
		for _, p := range []string{st.stateDir, filepath.Dir(sock)} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("%s has mode %o, want 700", p, perm)
			}
		}
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want a socket with no group or other permissions", sock, fi.Mode())
		}
		pid := st.pidOf(t, "redis")
		if l := tcpListeners(t, pid); len(l) > 0 {
			t.Errorf("redis-server (pid %d) listens on TCP %v, want none", pid, l)
		}
		// Another local user cannot even reach the socket. Only root can
		// switch users to show it; otherwise the mode bits above are the proof.
		if os.Geteuid() != 0 {
			t.Logf("not root: cannot run a client as another user; relying on the modes checked above")
			return
		}
		cli, err := exec.LookPath("redis-cli")
		if err != nil {
			stacktest.Missing(t, "redis-cli is not on PATH (apt-get install redis-tools)")
		}
		out := runAsNobody(t, cli, "-s", sock, "PING")
		if strings.Contains(out, "PONG") {
			t.Fatalf("user nobody reached Redis: %s", out)
		}
		if !strings.Contains(strings.ToLower(out), "permission denied") {
			t.Errorf("redis-cli as nobody said %q, want permission denied", out)
		}
		t.Logf("redis-cli as nobody: %s", strings.TrimSpace(out))
		// The owner, for contrast, gets in.
		own, _ := exec.Command(cli, "-s", sock, "PING").CombinedOutput()
		if !strings.Contains(string(own), "PONG") {
			t.Errorf("redis-cli as the owner said %q, want PONG", own)
		}
	})

	t.Run("every listener on loopback", func(t *testing.T) {
		pids := stackPids(t, st)
		// Exact addresses: only HAProxy's public side follows PLATFORM_HOST.
		local := func(v string) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(st.ports[v])) }
		want := map[string][]string{
			"haproxy":         {net.JoinHostPort(platformHost, strconv.Itoa(st.ports["PLATFORM_PORT"])), local("HAPROXY_STATS_PORT")},
			"auth-api":        {local("AUTH_API_PORT")},
			"core-api":        {local("CORE_API_PORT")},
			"psp-connector":   {local("PSP_CONNECTOR_PORT")},
			"redis":           nil,
			"process-compose": nil,
		}
		for name, pid := range pids {
			ls := tcpListeners(t, pid)
			addrs := []string{}
			for _, l := range ls {
				if !l.addr.IsLoopback() {
					t.Errorf("%s (pid %d) listens on %s, not loopback", name, pid, l)
				}
				addrs = append(addrs, l.String())
			}
			slices.Sort(addrs)
			w := append([]string{}, want[name]...)
			slices.Sort(w)
			if fmt.Sprint(addrs) != fmt.Sprint(w) {
				t.Errorf("%s (pid %d) listens on %v, want %v", name, pid, addrs, w)
			}
			t.Logf("%s (pid %d): %v", name, pid, ls)
		}
		// HAProxy's way to auth-api and core-api: unix sockets in the 0700
		// state dir, so only the stack's user can reach them.
		for _, svc := range []string{"auth-api", "core-api"} {
			sock := filepath.Join(st.stateDir, "run", svc+".sock")
			fi, err := os.Lstat(sock)
			if err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Errorf("%s's socket %s: got %v (mode %v), want a unix socket", svc, sock, err, fi)
			}
		}
		if fi, err := os.Stat(st.stateDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("state dir %s: got %v %v, want mode 0700", st.stateDir, fi, err)
		}
	})

	// Some traffic first, so the logs have something to leak.
	tok := st.login(t, "alice")
	b := hostileBuilder{host: st.addr, token: tok}
	for _, a := range tokenAttacks(t, st.secret, tok)[:12] {
		if _, err := rawExchange(st.addr, b.tx(fmt.Sprintf(`{"token":%q,"amount":5,"currency":"USD"}`, a.token)), 0, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := rawExchange(st.addr, b.txFields("5", `"USD"`), 0, 5*time.Second); err != nil || res.status != http.StatusOK {
		t.Fatalf("transaction: %v %d %s", err, res.status, res.body)
	}

	t.Run("no secret in the repository", func(t *testing.T) {
		root := stacktest.RepoRoot(t)
		if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
			// Even under CI=true: a Nix build's copy of the source has no .git, so
			// there are no tracked files, history or ignore rules to check.
			t.Skipf("%s is not a git checkout (no .git), as in a Nix build; run this in a checkout", root)
		}
		secrets := map[string]string{"this test's stack": string(st.secret)}
		// A developer's own stack in this checkout, and a local override.
		if b, err := os.ReadFile(filepath.Join(root, ".stack", "secrets", "jwt_secret")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			secrets[".stack/secrets/jwt_secret"] = string(bytes.TrimSpace(b))
		}
		if b, err := os.ReadFile(filepath.Join(root, "stack.local.env")); err == nil {
			if m := regexp.MustCompile(`(?m)^\s*JWT_SECRET\s*=\s*["']?([^"'\s]+)`).FindSubmatch(b); m != nil {
				secrets["stack.local.env"] = string(m[1])
			}
		}
		files := gitLines(t, root, "ls-files", "-z")
		generated := regexp.MustCompile(`JWT_SECRET\s*[=:]\s*["']?[0-9a-fA-F]{64}`)
		scanned := 0
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				continue // deleted in the work tree
			}
			scanned++
			for where, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds the JWT secret of %s", f, where)
				}
			}
			if m := generated.Find(b); m != nil {
				t.Errorf("%s holds what looks like a generated JWT secret: %.24s…", f, m)
			}
		}
		for where, s := range secrets {
			if hits := gitLines(t, root, "log", "--all", "--format=%h", "-S", s); len(hits) > 0 {
				t.Errorf("the JWT secret of %s is in the history, commits %v", where, hits)
			}
		}
		for _, p := range []string{".stack/secrets/jwt_secret", "stack.local.env"} {
			if err := exec.Command("git", "-C", root, "check-ignore", "-q", p).Run(); err != nil {
				t.Errorf("%s is not ignored by git", p)
			}
		}
		t.Logf("%d tracked files and the whole history scanned for %d secrets; .stack/ and stack.local.env ignored", scanned, len(secrets))
	})

	// A second client address (any 127/8 address is loopback on Linux), for
	// logins that must not share the brute force's quota.
	var otherClient *http.Client
	if ln, err := net.Listen("tcp", "127.0.0.3:0"); err == nil {
		ln.Close()
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}
		otherClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	}

	t.Run("other failed logins logged without the password", func(t *testing.T) {
		// From an address of its own, so the brute force below keeps its
		// whole quota.
		c := otherClient
		if c == nil {
			t.Skip("no second client address (127.0.0.3)")
		}
		var nonce [6]byte
		_, _ = rand.Read(nonce[:])
		tries := []struct {
			username   string // raw JSON
			wantStatus int
			wantReason string
		}{
			{`"mallory"`, http.StatusNotFound, "user_not_found"},
			{`"Alice"`, http.StatusNotFound, "user_not_found"},
			{`"alice "`, http.StatusNotFound, "user_not_found"},
			{`123`, http.StatusNotFound, "user_not_found"}, // no user's name is a number (as in the original)
		}
		var passwords []string
		for i, try := range tries {
			pw := fmt.Sprintf("other-%s-%02d", hex.EncodeToString(nonce[:]), i)
			passwords = append(passwords, pw)
			r, err := c.Post(st.base+"/auth/token", "application/json",
				strings.NewReader(fmt.Sprintf(`{"username":%s,"password":%q}`, try.username, pw)))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != try.wantStatus {
				t.Errorf("login as %s: got %d, want %d", try.username, r.StatusCode, try.wantStatus)
			}
		}
		time.Sleep(500 * time.Millisecond) // process-compose writes the last lines
		want, got := map[string]int{}, map[string]int{}
		for _, try := range tries {
			want[try.wantReason]++
		}
		sc := bufio.NewScanner(strings.NewReader(st.readLog(t, "auth-api")))
		for sc.Scan() {
			var rec struct{ Msg, Reason string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "login failed" && want[rec.Reason] > 0 {
				got[rec.Reason]++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("auth-api logged failed logins by reason %v, want %v", got, want)
		}
		checkNoPasswordLogged(t, st, passwords)
	})

	t.Run("login brute force: 429 at the router, failed logins logged without the password", func(t *testing.T) {
		// The quota is per address and per 10 s (AUTH_RATE_LIMIT,
		// securityRateLimit in this stack, not the default 20; 40 guesses
		// are more than either); the one login above counts too.
		var nonce [6]byte
		_, _ = rand.Read(nonce[:])
		c := st.client(5 * time.Second)
		statuses := map[int]int{}
		var passwords []string
		first429 := 0
		// The same route percent-encoded (which auth-api decodes) counts too.
		paths := []string{"/auth/token", "/auth/tok%65n", "/auth/%74oken"}
		for i := 1; i <= 40; i++ {
			pw := fmt.Sprintf("guess-%s-%02d", hex.EncodeToString(nonce[:]), i)
			passwords = append(passwords, pw)
			r, err := c.Post(st.base+paths[i%len(paths)], "application/json",
				strings.NewReader(fmt.Sprintf(`{"username":"alice","password":%q}`, pw)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(r.Body)
			r.Body.Close()
			statuses[r.StatusCode]++
			switch r.StatusCode {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				if first429 == 0 {
					first429 = i
				}
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(raw, &e) != nil || e.Error == "" || r.Header.Get("Retry-After") == "" {
					t.Errorf("429: got %q (Retry-After %q), want a JSON error and Retry-After", raw, r.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("guess %d: got %d %s, want 401 or 429", i, r.StatusCode, raw)
			}
		}
		// Even the right password is refused while the client keeps going,
		// on any spelling of the route.
		var rightPassword []int
		for _, p := range paths {
			r, err := c.Post(st.base+p, "application/json", strings.NewReader(`{"username":"alice","password":"password"}`))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			rightPassword = append(rightPassword, r.StatusCode)
			if r.StatusCode != http.StatusTooManyRequests {
				t.Errorf("right password on %s after the guesses: got %d, want 429", p, r.StatusCode)
			}
		}
		if first429 == 0 {
			t.Fatalf("40 wrong passwords in a row: got %v, never 429", statuses)
		}
		// Not before: only this address's requests count (the one login
		// above, then these), not the other address's logins.
		if first429 < securityRateLimit || first429 > securityRateLimit+1 {
			t.Errorf("first 429 at guess %d, want at guess %d or %d (AUTH_RATE_LIMIT=%d per 10 s per address, the login before counting while in the window)",
				first429, securityRateLimit, securityRateLimit+1, securityRateLimit)
		}
		// The limit is per address: another client still logs in.
		otherLogin := 0
		if otherClient != nil {
			r, err := otherClient.Post(st.base+"/auth/token", "application/json", strings.NewReader(`{"username":"alice","password":"password"}`))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			otherLogin = r.StatusCode
			if r.StatusCode != http.StatusOK {
				t.Errorf("login from another address while this one is refused: got %d, want 200 (the limit is per client address)", r.StatusCode)
			}
		}

		time.Sleep(500 * time.Millisecond) // process-compose writes the last lines
		authLog := st.readLog(t, "auth-api")
		failed := 0
		sc := bufio.NewScanner(strings.NewReader(authLog))
		for sc.Scan() {
			var rec struct {
				Msg, Username, Reason string
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "login failed" && rec.Reason == "invalid_password" && rec.Username == "alice" {
				failed++
			}
		}
		if failed != statuses[http.StatusUnauthorized] {
			t.Errorf("auth-api logged %d failed logins for alice, want %d (one per 401)", failed, statuses[http.StatusUnauthorized])
		}
		routerRefused := strings.Count(st.readLog(t, "haproxy"), `"status":429`)
		if routerRefused < statuses[http.StatusTooManyRequests] {
			t.Errorf("the router logged %d 429s, want at least %d", routerRefused, statuses[http.StatusTooManyRequests])
		}
		checkNoPasswordLogged(t, st, passwords)
		if t.Failed() {
			return // the RESULT line states what passed
		}
		t.Logf("RESULT login brute force | 40 wrong passwords for alice from one address (the route spelt as %s in turn), then the right one on each | %v; first 429 at guess %d; right password then: %v; auth-api logged %d failed logins (reason invalid_password), router %d 429s; no tried password in any log; then a login from another address: %d",
			strings.Join(paths, ", "), statuses, first429, rightPassword, failed, routerRefused, otherLogin)
	})

	t.Run("login brute force on auth-api's own port: 429 per username", func(t *testing.T) {
		// The router's limit does not reach the service's TCP port;
		// auth-api's own does (DIRECT_LOGIN_FAILURE_LIMIT, 20 per 10 s per
		// username, the stack's default), the right password refused too.
		// becky, so that alice's count above stays the router's.
		var nonce [6]byte
		_, _ = rand.Read(nonce[:])
		direct := fmt.Sprintf("http://127.0.0.1:%d/token", st.ports["AUTH_API_PORT"])
		c := st.client(5 * time.Second)
		var statuses []int
		var passwords []string
		for i := 1; i <= 23; i++ {
			pw := fmt.Sprintf("direct-%s-%02d", hex.EncodeToString(nonce[:]), i)
			if i == 23 {
				pw = "password" // the right one, last
			} else {
				passwords = append(passwords, pw)
			}
			r, err := c.Post(direct, "application/json", strings.NewReader(fmt.Sprintf(`{"username":"becky","password":%q}`, pw)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(r.Body)
			r.Body.Close()
			statuses = append(statuses, r.StatusCode)
			if want := map[bool]int{true: 401, false: 429}[i <= 20]; r.StatusCode != want ||
				(want == 429 && (r.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), "the limit is 20 per 10 seconds"))) {
				t.Errorf("login %d on the port: got %d %s (Retry-After %q), want %d", i, r.StatusCode, raw, r.Header.Get("Retry-After"), want)
			}
		}
		// Through the router (from the other address, whose quota is left),
		// becky still logs in: the port's limit is the port's only.
		viaRouter := 0
		if otherClient != nil {
			r, err := otherClient.Post(st.base+"/auth/token", "application/json", strings.NewReader(`{"username":"becky","password":"password"}`))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if viaRouter = r.StatusCode; viaRouter != http.StatusOK {
				t.Errorf("becky through the router while the port refuses her: got %d, want 200", viaRouter)
			}
		}
		time.Sleep(500 * time.Millisecond) // process-compose writes the last lines
		if n := strings.Count(st.readLog(t, "auth-api"), `"reason":"too_many_failed_logins"`); n != 3 {
			t.Errorf("auth-api logged %d refusals, want 3", n)
		}
		checkNoPasswordLogged(t, st, passwords)
		if !t.Failed() {
			t.Logf("RESULT direct brute force | 22 wrong passwords then the right one for becky on auth-api's port | %v; through the router then: %d", statuses, viaRouter)
		}
	})

	t.Run("no secret in any log", func(t *testing.T) {
		forms := secretForms(st.secret)
		files := logFiles(t, st)
		total := 0
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			total += len(b)
			if form := findSecret(b, forms); form != "" {
				t.Errorf("%s contains the JWT secret (%s)", f, form)
			}
		}
		// Nor does the launcher's own output.
		if form := findSecret([]byte(st.upOutput), forms); form != "" {
			t.Errorf("`stack up` printed the JWT secret (%s):\n%s", form, st.upOutput)
		}
		// Nor does process-compose's API show it.
		for _, name := range []string{"auth-api", "core-api"} {
			var info json.RawMessage
			if err := st.pc.call(http.MethodGet, "/process/info/"+name, &info); err != nil {
				t.Fatal(err)
			}
			if form := findSecret(info, forms); form != "" {
				t.Errorf("process-compose's API shows the JWT secret (%s) in /process/info/%s", form, name)
			}
		}
		if !t.Failed() {
			t.Logf("%d log files (%d bytes) and process-compose's process info: no JWT secret in %d forms", len(files), total, len(forms))
		}
	})

	t.Run("no secret on any command line", func(t *testing.T) {
		// /proc/<pid>/cmdline is readable by every user of the machine,
		// unlike environ: the secret must reach the APIs by environment
		// only, never as an argument of a process of the stack.
		needProc(t)
		pids := stackPids(t, st)
		forms := secretForms(st.secret)
		for name, pid := range pids {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				t.Fatalf("%s (pid %d): %v", name, pid, err)
			}
			if len(cmdline) == 0 {
				t.Errorf("%s (pid %d): empty command line; is it still running?", name, pid)
			}
			if form := findSecret(cmdline, forms); form != "" {
				t.Errorf("%s (pid %d): the JWT secret (%s) is on its command line, which every user can read", name, pid, form)
			}
		}
		if !t.Failed() {
			t.Logf("%d command lines: no JWT secret in %d forms", len(pids), len(forms))
		}
	})

	t.Run("the JWT secret only in the environment of the two APIs", func(t *testing.T) {
		secret := []byte(st.secret)
		ps, err := st.pc.processes()
		if err != nil {
			t.Fatal(err)
		}
		needProc(t)
		needs := map[string]bool{"auth-api": true, "core-api": true}
		// Not Redis: it writes its process title over the memory that
		// /proc/<pid>/environ shows, so that file cannot tell (the secret
		// is blanked for it in process-compose.yaml all the same).
		for _, name := range []string{"psp-connector", "core-api", "auth-api", "haproxy"} {
			environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", ps[name].Pid))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			has := bytes.Contains(environ, secret)
			if has != needs[name] {
				t.Errorf("%s (pid %d): JWT secret in its environment: got %v, want %v", name, ps[name].Pid, has, needs[name])
			}
		}
	})
}

// secretForms are the ways the JWT secret can show up in a log: as it is;
// base64 in each alphabet, which is how slog's JSON handler writes a []byte
// (the services hold the key as []byte(JWT_SECRET)); the hex of those bytes;
// the 32 random bytes the hex stands for, in base64; and every 16-character
// piece of it (64 bits of the key, say a "fingerprint" or a cut-off line).
func secretForms(secret []byte) map[string][]byte {
	forms := map[string][]byte{"as it is": secret, "hex-encoded": []byte(hex.EncodeToString(secret))}
	raw, rawErr := hex.DecodeString(string(secret))
	for name, enc := range map[string]*base64.Encoding{
		"base64": base64.StdEncoding, "base64, unpadded": base64.RawStdEncoding,
		"base64url": base64.URLEncoding, "base64url, unpadded": base64.RawURLEncoding,
	} {
		forms[name] = []byte(enc.EncodeToString(secret))
		if rawErr == nil {
			forms[name+" of the decoded bytes"] = []byte(enc.EncodeToString(raw))
		}
	}
	const piece = 16
	for i := 0; i+piece <= len(secret); i++ {
		forms[fmt.Sprintf("characters %d-%d", i+1, i+piece)] = secret[i : i+piece]
	}
	return forms
}

// findSecret names the first form of the secret found in b, or "".
func findSecret(b []byte, forms map[string][]byte) string {
	for name, f := range forms {
		if len(f) > 0 && bytes.Contains(b, f) {
			return name
		}
	}
	return ""
}

// checkNoPasswordLogged fails the test for each log file of the stack that
// contains one of passwords.
func checkNoPasswordLogged(t *testing.T, st *faultStack, passwords []string) {
	t.Helper()
	for _, f := range logFiles(t, st) {
		b, _ := os.ReadFile(f)
		for _, pw := range passwords {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s contains a tried password %q", f, pw)
				break
			}
		}
	}
}

// stackPids maps each process of the stack, process-compose included, to
// its pid: the five from process-compose's API, process-compose's own from
// its pid file in the state dir.
func stackPids(t *testing.T, st *faultStack) map[string]int {
	t.Helper()
	ps, err := st.pc.processes()
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for name, p := range ps {
		pids[name] = p.Pid
	}
	b, err := os.ReadFile(filepath.Join(st.stateDir, "process-compose.pid"))
	if err != nil {
		t.Fatalf("process-compose's pid file: %v", err)
	}
	if pids["process-compose"], err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("process-compose's pid file: %v", err)
	}
	return pids
}

// securityRateLimit is TestSecurity's AUTH_RATE_LIMIT: not the default.
const securityRateLimit = 13

// needProc skips a check that reads /proc on systems without it (macOS,
// where the flake's checks run too).
func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("reads /proc, which %s does not have", runtime.GOOS)
	}
}

// runAsNobody runs name as user and group 65534 and returns its output.
func runAsNobody(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// listener is one listening TCP socket.
type listener struct {
	addr net.IP
	port int
}

func (l listener) String() string { return net.JoinHostPort(l.addr.String(), strconv.Itoa(l.port)) }

// tcpListeners returns the listening TCP sockets that process pid holds,
// from /proc (its fds' socket inodes matched against /proc/net/tcp{,6}).
func tcpListeners(t *testing.T, pid int) []listener {
	t.Helper()
	needProc(t)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("list fds of pid %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var out []listener
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			host, port, _ := strings.Cut(f[1], ":")
			ip := procIP(host)
			p, _ := strconv.ParseInt(port, 16, 32)
			out = append(out, listener{addr: ip, port: int(p)})
		}
	}
	return out
}

// procIP decodes /proc/net/tcp's address: hex, in 32-bit little-endian words.
func procIP(h string) net.IP {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}

// gitLines runs git in dir and returns its output's lines (NUL-separated
// when args ask for -z).
func gitLines(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	sep := "\n"
	for _, a := range args {
		if a == "-z" {
			sep = "\x00"
		}
	}
	var lines []string
	for _, l := range strings.Split(string(out), sep) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// logFiles lists every file in the stack's log directory.
func logFiles(t *testing.T, st *faultStack) []string {
	t.Helper()
	entries, err := os.ReadDir(st.logDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, filepath.Join(st.logDir, e.Name()))
		}
	}
	return out
}
