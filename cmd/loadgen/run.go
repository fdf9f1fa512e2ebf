package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/cliflag"
	"github.com/acme-payments/platform/internal/envconfig"
	"github.com/acme-payments/platform/internal/loadgen"
	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/txqueue"
)

// environment is what loadgen reads from the environment when it runs where
// no stack's files are (see findStack). Flags override all of it.
type environment struct {
	PlatformHost  string `env:"PLATFORM_HOST" envDefault:"127.0.0.1"`
	PlatformPort  int    `env:"PLATFORM_PORT" envDefault:"8080"`
	RedisURL      string `env:"REDIS_URL"`
	StackStateDir string `env:"STACK_STATE_DIR"`
}

func (e environment) validate() error {
	if err := stackconfig.CheckPlatformHost(e.PlatformHost); err != nil {
		return err
	}
	if e.PlatformPort < 1 || e.PlatformPort > 65535 {
		return fmt.Errorf("PLATFORM_PORT must be a TCP port (1-65535), got %d", e.PlatformPort)
	}
	return nil
}

// stackDefaults are the defaults of --target and --redis-url.
type stackDefaults struct {
	target   string
	redisURL string // "" when no Redis is known
	// redisFrom names where redisURL came from, for its errors: a
	// REDIS_URL set in the environment or a settings file, or the stack's
	// socket.
	redisFrom string
}

// findStack works out where the stack listens. Where the launcher would find
// the stack's files (STACK_SHARE_DIR, a checkout at or above cwd, or the
// share directory of an installed package), it reads the stack's own
// configuration as the launcher does (stack.env, stack.local.env, then the
// environment), so loadgen finds the router's port and the Redis socket of
// the stack that `stack up` started from the same place. Elsewhere it reads
// PLATFORM_HOST, PLATFORM_PORT, REDIS_URL and STACK_STATE_DIR alone, STACK_STATE_DIR's
// default being the launcher's outside a checkout (stackconfig.UserStateDir).
// The Redis socket is used only when it exists (a running stack).
func findStack(cwd, exe string, environ []string) (stackDefaults, error) {
	vars := env.ToMap(environ)
	shareDir := vars["STACK_SHARE_DIR"]
	layout, err := stackconfig.FindLayout(cwd, exe, shareDir, vars["STACK_TRUSTED_CHECKOUT"])
	if err == nil {
		cfg, err := stackconfig.Load(layout, cwd, environ)
		if err != nil {
			return stackDefaults{}, fmt.Errorf("the stack's configuration (%s): %w", layout.ConfigDir, err)
		}
		d := stackDefaults{target: targetURL(cfg.PlatformHost, cfg.PlatformPort)}
		if cfg.Values["REDIS_URL"] != "" {
			d.redisURL = cfg.RedisURL
			d.redisFrom = "REDIS_URL (" + cfg.SetIn("REDIS_URL") + "; the default of --redis-url)"
		} else if isSocket(cfg.RedisSocket()) {
			d.redisURL = stackconfig.UnixURL(cfg.RedisSocket())
			d.redisFrom = "the stack's Redis socket (the default of --redis-url)"
		}
		return d, nil
	}
	if shareDir != "" || errors.As(err, new(*stackconfig.UntrustedCheckoutError)) {
		return stackDefaults{}, err
	}
	var e environment
	if err := envconfig.Parse(environ, &e); err != nil {
		return stackDefaults{}, err
	}
	if err := e.validate(); err != nil {
		return stackDefaults{}, err
	}
	d := stackDefaults{target: targetURL(e.PlatformHost, e.PlatformPort), redisURL: e.RedisURL,
		redisFrom: "REDIS_URL (set in the environment; the default of --redis-url)"}
	if d.redisURL == "" {
		d.redisFrom = "the stack's Redis socket (the default of --redis-url)"
		vars := env.ToMap(environ)
		stateDir := cmp.Or(e.StackStateDir, stackconfig.UserStateDir(cwd, vars["XDG_STATE_HOME"], vars["HOME"]))
		sock := stackconfig.Config{StateDir: stateDir}.RedisSocket()
		if abs, err := filepath.Abs(sock); err == nil && isSocket(abs) {
			d.redisURL = stackconfig.UnixURL(abs)
		}
	}
	return d, nil
}

// targetURL is the router's URL for HAProxy bound to host:port; a router
// bound to every address (0.0.0.0) is reached on 127.0.0.1.
func targetURL(host string, port int) string {
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s:%d", host, port)
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

const usage = `usage: loadgen [flags]

Drives POST /auth/token and POST /transaction/transaction through the router,
then waits until every accepted transaction is processed. Closed loop (as fast
as -c workers go) unless --rate is set (open loop, latency from the due time;
--arrivals poisson spaces its requests by random gaps instead of evenly).
Exits non-zero when an accepted transaction was never processed, or could
not be checked; 0 with the verdict "not verified" when nothing could be
checked (--verify none without the queue probe).

Flags:
`

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("current directory: %w", err)
	}
	exe, _ := os.Executable()
	// A stack whose settings are wrong is the error only where its
	// defaults are needed: -target (and --redis-url) given on the command
	// line do without them, and -h lists the flags whatever the settings.
	stack, stackErr := findStack(cwd, exe, environ)

	target := stack.target
	def := loadgen.DefaultConfig(target)
	cfg := def

	// The flag package prints nothing itself: -h prints the usage, and a
	// bad flag is one line, worded by cliflag, not the whole usage after
	// "parse error".
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&target, "target", target, "router base URL; the default is built from the stack's PLATFORM_HOST and PLATFORM_PORT")
	tokenURL := fs.String("token-url", "", "token endpoint (default <target>/auth/token)")
	txURL := fs.String("tx-url", "", "transaction endpoint (default <target>/transaction/transaction)")
	statusURL := fs.String("status-url", "", "status endpoint prefix, id appended (default <target>/transaction/transactions/)")
	mode := fs.String("mode", string(def.Mode), "tx (tokens + transactions) or token (tokens only)")
	fs.IntVar(&cfg.Concurrency, "c", def.Concurrency, "workers (keep-alive connections); shorthand of --concurrency")
	fs.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "workers (keep-alive connections)")
	fs.IntVar(&cfg.Merchants, "merchants", def.Merchants, "merchant sessions, each with its own token, sharing the workers")
	users := fs.String("users", strings.Join(def.Users, ","), "comma-separated usernames (enabled users)")
	fs.StringVar(&cfg.Password, "password", def.Password, "every user's password")
	fs.DurationVar(&cfg.Duration, "duration", def.Duration, "load duration (0 with --count)")
	fs.Int64Var(&cfg.Count, "count", 0, "number of requests instead of a duration")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second (0: closed loop)")
	arrivals := fs.String("arrivals", string(def.Arrivals), "open loop: even (every 1/rate) or poisson (random gaps of mean 1/rate, seeded by --seed)")
	fs.BoolVar(&cfg.Bearer, "bearer", false, "send the token as Authorization: Bearer instead of in the body")
	fs.BoolVar(&cfg.IdempotencyKeys, "idempotency-keys", false, "send every transaction with an Idempotency-Key of its own, new every run whatever --seed (core-api keeps each for its IDEMPOTENCY_TTL, 24 h by default); a 503 \"may be queued\" is sent again with its key")
	fs.BoolVar(&cfg.StdClient, "std-client", false, "use net/http's client instead of the lean built-in HTTP/1.1 client")
	currencies := fs.String("currencies", strings.Join(def.Currencies, ","), "comma-separated currencies to pick from")
	fs.Int64Var(&cfg.MaxAmount, "max-amount", def.MaxAmount, "amounts are uniform in [1, max-amount]")
	fs.DurationVar(&cfg.TokenRefresh, "token-refresh", def.TokenRefresh, "replace a token this long before it expires")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", def.RequestTimeout, "per-request timeout")
	verify := fs.String("verify", string(def.Verify), "status lookups after the load: all, sample or none")
	fs.IntVar(&cfg.VerifySample, "verify-sample", def.VerifySample, "sample size; needs --verify sample")
	verifyVia := fs.String("verify-via", "", "where statuses are looked up: http (status endpoint) or redis (default: redis when the Redis is known)")
	redisURL := fs.String("redis-url", "", `Redis of the stack, to watch the consumer group drain ("none": do not; default the stack's REDIS_URL, else its socket if present)`)
	stream := fs.String("stream", loadgen.DefaultStream, "stream the transactions are queued on")
	group := fs.String("group", loadgen.DefaultGroup, "consumer group of the connector")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", def.DrainTimeout, "how long after the load to wait for every transaction to be processed")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed for amounts, currencies, Poisson arrivals and the verification sample (0: drawn at random; the report gives it)")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	fs.IntVar(&cfg.WatchPID, "watch-pid", 0, "report the CPU time of this process and its descendants during the load (Linux; e.g. the stack's process-compose pid)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprint(stderr, usage)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w (loadgen -h lists the flags)", cliflag.Explain(fs, err))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if stackErr != nil {
		if !set["target"] && (*tokenURL == "" || *txURL == "" || *statusURL == "") {
			return stackErr
		}
		if !set["redis-url"] {
			fmt.Fprintf(stderr, "loadgen: the router's URLs are given, so the stack's settings are not used, and without --redis-url no Redis is watched: %v\n", stackErr)
		}
	}
	if set["verify-sample"] && *verify != string(loadgen.VerifySample) {
		// Otherwise --verify-sample 100 alone would look up every accepted
		// transaction (or none) and say nothing.
		return fmt.Errorf("--verify-sample: only with --verify sample (--verify is %q)", *verify)
	}
	if cfg.Count > 0 && !set["duration"] {
		cfg.Duration = 0
	}
	// The default merchants fit the workers (-c 1: one merchant); more
	// merchants than workers, asked for, is an error (loadgen.Config).
	if !set["merchants"] && cfg.Concurrency >= 1 {
		cfg.Merchants = min(cfg.Merchants, cfg.Concurrency)
	}

	target = strings.TrimRight(target, "/")
	if *tokenURL == "" || *txURL == "" || *statusURL == "" {
		if err := loadgen.CheckURL(target); err != nil {
			return fmt.Errorf("--target: %w (e.g. http://127.0.0.1:8080)", err)
		}
	}
	cfg.TokenURL = orDefault(*tokenURL, target+"/auth/token")
	cfg.TxURL = orDefault(*txURL, target+"/transaction/transaction")
	cfg.StatusURL = orDefault(*statusURL, target+"/transaction/transactions/")
	cfg.Mode = loadgen.Mode(*mode)
	cfg.Arrivals = loadgen.Arrivals(*arrivals)
	cfg.Users = splitList(*users)
	cfg.Currencies = splitList(*currencies)
	cfg.Verify = loadgen.Verify(*verify)
	cfg.VerifyVia = loadgen.Via(*verifyVia)
	if !*quiet {
		cfg.Progress = stderr
	}

	// go-redis logs every failed dial itself; the probe's errors say enough.
	// (Through txqueue, which installs go-redis's logger once: setting it
	// here at every run raced with earlier clients' dials.)
	txqueue.RouteClientLogs(slog.New(slog.DiscardHandler))
	if url := stackRedisURL(*redisURL, stack); url != "" && cfg.Mode == loadgen.ModeTransactions {
		q, err := loadgen.NewQueueProbe(url, *stream, *group)
		if err != nil {
			from := "--redis-url"
			if *redisURL == "" {
				from = stack.redisFrom
			}
			return fmt.Errorf("%s: %w", from, err)
		}
		defer q.Close()
		cfg.Queue = q
	}

	stopProfile := func() error { return nil }
	if *cpuProfile != "" {
		if stopProfile, err = startCPUProfile(*cpuProfile); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	rep, err := loadgen.Run(ctx, cfg)
	if perr := stopProfile(); err == nil && perr != nil {
		err = fmt.Errorf("--cpuprofile: %w", perr)
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		// The report's fields, and the verdict the text report ends with
		// (the exit status says it too).
		out := struct {
			*loadgen.Report
			Verdict string `json:"verdict"`
			Why     string `json:"verdict_reason,omitempty"`
		}{Report: rep}
		out.Verdict, out.Why = rep.Verdict()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout); err != nil {
		return err
	}
	return rep.Err()
}

// startCPUProfile profiles the generator until stop, which writes the
// profile to path and reports whether it was written in full. (pprof drops
// its writer's errors, so the profile is kept in memory, then written.) The
// file is created at once: a path that cannot be written fails before the
// load.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var profile bytes.Buffer
	if err := pprof.StartCPUProfile(&profile); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		_, err := f.Write(profile.Bytes())
		return errors.Join(err, f.Close())
	}, nil
}

// stackRedisURL picks the Redis to probe: the flag ("none": none), else the
// stack's (findStack).
func stackRedisURL(flagValue string, stack stackDefaults) string {
	switch flagValue {
	case "none":
		return ""
	case "":
		return stack.redisURL
	}
	return flagValue
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
