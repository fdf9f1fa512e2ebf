package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/envconfig"
	"github.com/acme-payments/platform/internal/regularfile"
)

// config is psp-connector's whole configuration, read from the environment.
type config struct {
	envconfig.Server
	envconfig.Queue
	ConsumerName      string        `env:"CONSUMER_NAME"`
	VisibilityTimeout time.Duration `env:"VISIBILITY_TIMEOUT" envDefault:"30s"`
	ClaimInterval     time.Duration `env:"CLAIM_INTERVAL" envDefault:"5s"`
	MaxDeliveries     int           `env:"MAX_DELIVERIES" envDefault:"5"`
	BatchSize         int           `env:"BATCH_SIZE" envDefault:"144"`        // txqueue.DefaultBatchSize
	Chargers          int           `env:"CHARGE_CONCURRENCY" envDefault:"24"` // txqueue.DefaultChargers
	// ChargeLog is the file this connector's standard output ends up in,
	// read back for the rounds' ledger lines (ledgerPSP); "" for none.
	ChargeLog string `env:"CHARGE_LOG"`
	// ChargeLedger is a file of the connector's own that each round's
	// ledger line is appended to, and read back with CHARGE_LOG
	// (ledgerPSP); "" for none.
	ChargeLedger string `env:"CHARGE_LEDGER"`

	// ServeHealth: HTTP_PORT is set, so serve GET /health (README.md).
	ServeHealth bool `env:"-"`
	// ConsumerGone judges the group's other consumers gone for good: set
	// with the default CONSUMER_NAME only (goneFromThisHost), nil for a
	// name of the operator's, whose scheme it cannot know.
	ConsumerGone func(name string) bool `env:"-"`
}

// minVisibilityTimeout bounds VISIBILITY_TIMEOUT from below.
const minVisibilityTimeout = time.Second

// minClaimInterval bounds CLAIM_INTERVAL from below. Each interval the
// connector runs a reclaim pass (XAUTOCLAIM), a trim script and its
// progress line: at 1ms that was 836 progress lines in 2 s of load, and
// Redis busy with passes that find nothing. An entry becomes reclaimable
// only after VISIBILITY_TIMEOUT (1 s at least), so a pass every 100 ms
// finds it at most a tenth of the shortest lease late: no deployment gains
// from going under it.
const minClaimInterval = 100 * time.Millisecond

// maxBatchSize bounds BATCH_SIZE: one batch is one claim script call with a
// key per entry.
const maxBatchSize = 10_000

// parseConfig reads environ (KEY=value pairs) into a validated config. Every
// error names the environment variable at fault.
func parseConfig(environ []string) (config, error) {
	var cfg config
	if err := envconfig.Parse(environ, &cfg); err != nil {
		return cfg, err
	}
	vals := env.ToMap(environ)
	cfg.ServeHealth = vals["HTTP_PORT"] != ""
	for _, name := range []string{"HTTP_HOST", "HTTP_SOCKET"} {
		if vals[name] != "" && !cfg.ServeHealth {
			return cfg, envconfig.Invalid(name, "is set but HTTP_PORT is not: psp-connector serves GET /health only on HTTP_PORT (and then on HTTP_SOCKET too); set HTTP_PORT as well, or neither")
		}
	}
	return cfg, cfg.validate()
}

// validate checks each rule in turn and fills the derived fields.
func (c *config) validate() error {
	if err := c.Server.Validate(); err != nil {
		return err
	}
	if err := c.Queue.Validate(); err != nil {
		return err
	}
	if c.ConsumerName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "psp-connector"
		}
		c.ConsumerName = host + "-" + strconv.Itoa(os.Getpid())
		c.ConsumerGone = goneFromThisHost(host, os.Getpid())
	}
	if c.VisibilityTimeout < minVisibilityTimeout {
		return fmt.Errorf("VISIBILITY_TIMEOUT must be at least %s, such as 30s (it is also the lease on a transaction being charged: shorter than a round of charges and its record, another connector could charge it again), got %s",
			minVisibilityTimeout, c.VisibilityTimeout)
	}
	if c.ClaimInterval < minClaimInterval {
		return fmt.Errorf("CLAIM_INTERVAL must be at least %s, such as 5s (each interval runs a reclaim pass, a trim and a progress line; an entry is reclaimable only after VISIBILITY_TIMEOUT, at least 1s, so a shorter interval reclaims nothing sooner), got %s",
			minClaimInterval, c.ClaimInterval)
	}
	if least := 2 * (c.VisibilityTimeout + c.ClaimInterval); c.StatusTTL < least {
		return &envconfig.SettingError{Vars: []string{"STATUS_TTL", "VISIBILITY_TIMEOUT", "CLAIM_INTERVAL"},
			Msg: fmt.Sprintf("STATUS_TTL must be at least twice the sum of VISIBILITY_TIMEOUT and CLAIM_INTERVAL (2 × (%s + %s) = %s), got %s: a status record holds the claim on its transaction, and a claimed one keeps only half of STATUS_TTL, which must outlast the wait for its reclaim; a shorter one expires in between, and a transaction the PSP declines is charged again every VISIBILITY_TIMEOUT, never dead-lettered",
				c.VisibilityTimeout, c.ClaimInterval, least, c.StatusTTL)}
	}
	if c.MaxDeliveries < 1 {
		return fmt.Errorf("MAX_DELIVERIES must be at least 1, got %d", c.MaxDeliveries)
	}
	if c.Chargers < 1 || c.Chargers > 64 {
		return fmt.Errorf("CHARGE_CONCURRENCY must be between 1 and 64, got %d", c.Chargers)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		return fmt.Errorf("BATCH_SIZE must be between 1 and %d, got %d", maxBatchSize, c.BatchSize)
	}
	if err := c.checkChargeLog(); err != nil {
		return err
	}
	return c.checkChargeLedger()
}

// checkChargeLog checks at start what the ledger needs only after a crash:
// that CHARGE_LOG can be read. The file need not exist yet (whoever collects
// the output may create it with the first line), but its directory must, and
// a file that exists must open; otherwise the recovery would find nothing
// and charge again, with a warning no one reads.
func (c *config) checkChargeLog() error {
	if c.ChargeLog == "" {
		return nil
	}
	// Before the open: open(2) of a named pipe waits for a writer, for good.
	switch kind := regularfile.Irregular(c.ChargeLog); kind {
	case "":
	case "a directory":
		return fmt.Errorf("CHARGE_LOG %q is a directory: it must name the file this connector's standard output goes to", c.ChargeLog)
	default:
		return fmt.Errorf("CHARGE_LOG %q is not a regular file (%s): it must name the file this connector's standard output goes to, which is read back after a crash", c.ChargeLog, kind)
	}
	f, err := os.Open(c.ChargeLog)
	if err == nil {
		f.Close()
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("CHARGE_LOG %q cannot be read back for the rounds' ledger lines: %w", c.ChargeLog, err)
	}
	if st, err := os.Stat(filepath.Dir(c.ChargeLog)); err != nil || !st.IsDir() {
		return fmt.Errorf("CHARGE_LOG %q is in no directory that exists: it must name the file this connector's standard output goes to", c.ChargeLog)
	}
	return nil
}

// checkChargeLedger checks that CHARGE_LEDGER, when set, is in a directory
// that exists (the connector creates the file) and is not CHARGE_LOG, by
// any name: the copy is there for when that file is truncated. Nor may its
// previous file (.1) be CHARGE_LOG: starting a new file would move the log
// away from where its writer writes it.
func (c *config) checkChargeLedger() error {
	if c.ChargeLedger == "" {
		return nil
	}
	if c.ChargeLog != "" && sameFile(c.ChargeLedger, c.ChargeLog) {
		return fmt.Errorf("CHARGE_LEDGER %q is CHARGE_LOG (%q): it must be a file of the connector's own, which nothing else writes or truncates", c.ChargeLedger, c.ChargeLog)
	}
	if c.ChargeLog != "" && sameFile(c.ChargeLedger+".1", c.ChargeLog) {
		return fmt.Errorf("CHARGE_LEDGER %q becomes CHARGE_LOG (%q) when it starts a new file (it moves to %q): it must be a file of the connector's own", c.ChargeLedger, c.ChargeLog, c.ChargeLedger+".1")
	}
	if st, err := os.Stat(filepath.Dir(c.ChargeLedger)); err != nil || !st.IsDir() {
		return fmt.Errorf("CHARGE_LEDGER %q is in no directory that exists: the connector creates the file, not its directory", c.ChargeLedger)
	}
	if kind := regularfile.Irregular(c.ChargeLedger); kind != "" {
		return fmt.Errorf("CHARGE_LEDGER %q is not a regular file (%s)", c.ChargeLedger, kind)
	}
	return nil
}

// sameFile reports whether paths a and b name one file: both exist and are
// the same file (through symlinks, or hard links), or they are the same path
// once made absolute with their directories' symlinks resolved (for a file
// not created yet).
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return resolvedPath(a) == resolvedPath(b)
}

// resolvedPath is path made absolute, with the symlinks in its directory
// resolved; path itself need not exist.
func resolvedPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
