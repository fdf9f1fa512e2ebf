// Package loadgen drives the platform's merchant flow (token, then
// transactions) at a fixed concurrency or a fixed arrival rate, records
// latencies in HdrHistograms, and afterwards verifies that every accepted
// transaction was processed.
package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"time"

	tokens "github.com/acme-payments/platform/internal/token"
)

// Mode selects what the workers send.
type Mode string

const (
	// ModeTransactions posts transactions, fetching a token per merchant and
	// reusing it until shortly before it expires.
	ModeTransactions Mode = "tx"
	// ModeTokens only posts to the token endpoint, to measure tokens/s.
	ModeTokens Mode = "token"
)

// Verify selects how much of the accepted work is checked after the load.
type Verify string

const (
	// VerifyAll looks up the status of every accepted transaction.
	VerifyAll Verify = "all"
	// VerifySample looks up Config.VerifySample transactions chosen uniformly;
	// the queue probe (when configured) still proves the backlog drained.
	VerifySample Verify = "sample"
	// VerifyNone skips the status lookups (the queue probe still runs).
	VerifyNone Verify = "none"
)

// Arrivals selects how an open loop spaces its requests in time.
type Arrivals string

const (
	// ArrivalsEven sends a request exactly every 1/Rate.
	ArrivalsEven Arrivals = "even"
	// ArrivalsPoisson sends requests at the same mean Rate with independent,
	// exponentially distributed gaps (a Poisson process), as clients acting
	// on their own would. Two even schedules at the same rate keep a fixed
	// phase against each other and against anything periodic on the server
	// (a batch, an fsync); Poisson arrivals average over every phase.
	ArrivalsPoisson Arrivals = "poisson"
)

// Via selects where statuses are looked up.
type Via string

const (
	// ViaHTTP asks GET /transaction/transactions/{id} with the merchant's
	// token, as a merchant would.
	ViaHTTP Via = "http"
	// ViaRedis reads the status records from Redis (Config.Queue must be
	// set): the same data, without an HTTP round trip per transaction.
	ViaRedis Via = "redis"
)

// Config describes one run. The zero value is not usable: start from
// DefaultConfig and set the URLs.
type Config struct {
	// TokenURL is the full URL of POST /auth/token (or auth-api's /token).
	TokenURL string
	// TxURL is the full URL of POST /transaction/transaction.
	TxURL string
	// StatusURL is the URL prefix of GET /transaction/transactions/{id}; the
	// id is appended.
	StatusURL string

	// Users are the merchants' usernames; merchant i logs in as
	// Users[i%len(Users)].
	Users []string
	// Password is every user's password.
	Password string
	// Merchants is how many merchant sessions (each with its own token) share
	// the workers; worker w belongs to merchant w%Merchants.
	Merchants int

	// Mode is what the workers send.
	Mode Mode
	// Concurrency is the number of workers, each with its own keep-alive
	// connection. In open loop it bounds the requests in flight.
	Concurrency int
	// Duration ends the load after this long (exclusive with Count).
	Duration time.Duration
	// Count ends the load after this many requests (exclusive with Duration).
	Count int64
	// Rate, when > 0, switches to open loop: requests are due at a constant
	// Rate per second and latency is measured from the due time, so a stalled
	// server cannot hide its queueing delay (no coordinated omission).
	Rate float64
	// Arrivals spaces the open loop's requests (Rate > 0 only).
	Arrivals Arrivals
	// Bearer sends the token in an Authorization header instead of the body.
	Bearer bool
	// IdempotencyKeys sends every transaction with an Idempotency-Key of
	// its own, as a merchant that may retry would.
	IdempotencyKeys bool
	// StdClient uses net/http's client instead of the generator's own
	// minimal HTTP/1.1 client (which is used for http:// URLs otherwise).
	StdClient bool

	// Currencies are picked uniformly for each transaction.
	Currencies []string
	// MaxAmount bounds the random amounts, which are in [1, MaxAmount].
	MaxAmount int64
	// TokenRefresh is how long before its expiry a token is replaced.
	TokenRefresh time.Duration
	// RequestTimeout bounds each HTTP request.
	RequestTimeout time.Duration

	// Verify selects the status lookups after the load.
	Verify Verify
	// VerifySample is the sample size for VerifySample.
	VerifySample int
	// VerifyVia is where statuses are looked up; "" means ViaRedis when
	// Queue is set, else ViaHTTP.
	VerifyVia Via
	// Queue, when set, is polled after the load until the consumer group has
	// no lag and nothing pending; that is what "drained" means.
	Queue *QueueProbe
	// DrainTimeout bounds the wait for the backlog to drain and for every
	// checked transaction to leave "queued".
	DrainTimeout time.Duration

	// WatchPID, when > 0, is the root of a process tree (the stack's
	// process-compose) whose CPU time during the load phase is reported.
	WatchPID int

	// Progress, when set, receives one line per ProgressInterval.
	Progress io.Writer
	// ProgressInterval is the progress period (default 1 s).
	ProgressInterval time.Duration
	// Seed seeds the random amounts and currencies, Poisson arrivals and
	// the verification sample (0: one drawn at random, which the report
	// gives).
	Seed uint64
}

// DefaultConfig returns a closed-loop transaction run against the router on
// base (e.g. "http://127.0.0.1:8080") with the enabled reference users.
func DefaultConfig(base string) Config {
	return Config{
		TokenURL:         base + "/auth/token",
		TxURL:            base + "/transaction/transaction",
		StatusURL:        base + "/transaction/transactions/",
		Users:            []string{"alice", "becky"},
		Password:         "password",
		Merchants:        2,
		Mode:             ModeTransactions,
		Concurrency:      64,
		Duration:         10 * time.Second,
		Arrivals:         ArrivalsEven,
		Currencies:       []string{"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK"},
		MaxAmount:        100_000,
		TokenRefresh:     5 * time.Second,
		RequestTimeout:   10 * time.Second,
		Verify:           VerifyAll,
		VerifySample:     1000,
		DrainTimeout:     30 * time.Second,
		ProgressInterval: time.Second,
	}
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// via is where statuses are looked up: VerifyVia, else Redis when Queue is
// set, else HTTP.
func (c *Config) via() Via {
	switch {
	case c.VerifyVia != "":
		return c.VerifyVia
	case c.Queue != nil:
		return ViaRedis
	}
	return ViaHTTP
}

// validate checks the config; each error names the flag that fixes it.
func (c *Config) validate() error {
	var errs []error
	if err := CheckURL(c.TokenURL); err != nil {
		errs = append(errs, fmt.Errorf("--token-url: %w", err))
	}
	if c.Mode == ModeTransactions {
		if err := CheckURL(c.TxURL); err != nil {
			errs = append(errs, fmt.Errorf("--tx-url: %w", err))
		}
		if c.Verify != VerifyNone && c.via() == ViaHTTP {
			if err := CheckURL(c.StatusURL); err != nil {
				errs = append(errs, fmt.Errorf("--status-url: %w", err))
			}
		}
	}
	if c.Mode != ModeTransactions && c.Mode != ModeTokens {
		errs = append(errs, fmt.Errorf("--mode: %q is not tx or token", c.Mode))
	}
	if len(c.Users) == 0 {
		errs = append(errs, errors.New("--users: at least one user is needed"))
	}
	if c.Merchants < 1 {
		errs = append(errs, fmt.Errorf("--merchants: %d is not positive", c.Merchants))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency: %d is not positive", c.Concurrency))
	} else if c.Merchants > c.Concurrency {
		// Worker w serves merchant w%Merchants: the rest would only log in.
		errs = append(errs, fmt.Errorf("--merchants: %d merchants for %d workers (-c); merchants beyond the workers would send nothing", c.Merchants, c.Concurrency))
	}
	switch {
	case c.Count < 0:
		errs = append(errs, fmt.Errorf("--count: %d is negative", c.Count))
	case c.Duration < 0:
		errs = append(errs, fmt.Errorf("--duration: %v is negative", c.Duration))
	case (c.Duration > 0) == (c.Count > 0):
		errs = append(errs, errors.New("--duration, --count: set exactly one of them"))
	}
	// The schedule spaces requests 1/rate apart in whole nanoseconds.
	if math.IsNaN(c.Rate) || c.Rate < 0 || (c.Rate > 0 && (c.Rate < MinRate || c.Rate > MaxRate)) {
		errs = append(errs, fmt.Errorf("--rate: %v is not 0 (closed loop) or from %v to %v per second", c.Rate, MinRate, MaxRate))
	}
	if c.Arrivals == "" {
		c.Arrivals = ArrivalsEven
	}
	switch {
	case c.Arrivals != ArrivalsEven && c.Arrivals != ArrivalsPoisson:
		errs = append(errs, fmt.Errorf("--arrivals: %q is not even or poisson", c.Arrivals))
	case c.Arrivals == ArrivalsPoisson && c.Rate == 0:
		errs = append(errs, errors.New("--arrivals: poisson spaces an open loop's requests; it needs --rate"))
	}
	if len(c.Currencies) == 0 {
		errs = append(errs, errors.New("--currencies: at least one currency is needed"))
	}
	for _, cur := range c.Currencies {
		if !currencyRE.MatchString(cur) {
			errs = append(errs, fmt.Errorf("--currencies: %q is not three capital letters", cur))
		}
	}
	if c.MaxAmount < 1 {
		errs = append(errs, fmt.Errorf("--max-amount: %d is not positive", c.MaxAmount))
	}
	if c.TokenRefresh < 0 || c.TokenRefresh >= tokens.TTL {
		errs = append(errs, fmt.Errorf("--token-refresh: %v is not in [0, %v), the tokens' lifetime", c.TokenRefresh, tokens.TTL))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: %v is not positive", c.RequestTimeout))
	}
	switch c.Verify {
	case VerifyAll, VerifyNone:
	case VerifySample:
		if c.VerifySample < 1 {
			errs = append(errs, fmt.Errorf("--verify-sample: %d is not positive", c.VerifySample))
		}
	default:
		errs = append(errs, fmt.Errorf("--verify: %q is not all, sample or none", c.Verify))
	}
	if c.Mode == ModeTokens && c.IdempotencyKeys {
		errs = append(errs, errors.New("--idempotency-keys: --mode token sends no transactions"))
	}
	switch {
	case c.Mode == ModeTokens && c.VerifyVia != "":
		errs = append(errs, fmt.Errorf("--verify-via: %q, but --mode token verifies nothing", c.VerifyVia))
	case c.Mode == ModeTokens:
	case c.VerifyVia == "":
		c.VerifyVia = c.via()
	case c.VerifyVia == ViaHTTP:
	case c.VerifyVia == ViaRedis:
		if c.Queue == nil {
			errs = append(errs, errors.New("--verify-via=redis: needs --redis-url"))
		}
	default:
		errs = append(errs, fmt.Errorf("--verify-via: %q is not http or redis", c.VerifyVia))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout: %v is not positive", c.DrainTimeout))
	}
	if c.WatchPID < 0 {
		errs = append(errs, fmt.Errorf("--watch-pid: %d is negative (a process id, or 0 for none)", c.WatchPID))
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	return errors.Join(errs...)
}

// The open-loop rates --rate accepts, per second.
const (
	MinRate = 0.001
	MaxRate = 1e8
)

// CheckURL says why s is not an http(s) URL with a host, or nil.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
