package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/acme-payments/platform/internal/procompose"
	"github.com/acme-payments/platform/internal/stackconfig"
)

// reset deletes the state dir after confirmation (or --yes). It refuses
// while the stack runs, and refuses a directory that does not look like a
// state dir, so a mistaken STACK_STATE_DIR cannot wipe something else.
func (l *launcher) reset(ctx context.Context, args []string) error {
	fs := newFlagSet("reset")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if err := l.parseFlags(fs, args); err != nil {
		return err
	}
	// Below a directory another user could change, the state dir could be
	// swapped between the checks and the deletion.
	if err := stackconfig.CheckParents(l.cfg.StateDir); err != nil {
		return fmt.Errorf("not deleting the state dir: %w", err)
	}
	// STACK_STATE_DIR may be a symlink to the state dir: what it points to
	// (its secret and data) is deleted, then the link, not the link alone.
	// The link is resolved once, here, and everything below (the checks, the
	// question, the deletion) works on what it pointed to then: resolved
	// again after the question, a link that another user owns (one planted
	// in /tmp, say) could be pointed at any of this user's directories in
	// the meantime, and that directory was deleted unchecked.
	link := ""
	if fi, err := os.Lstat(l.cfg.StateDir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := stackconfig.CheckOwned(l.cfg.StateDir); err != nil {
			return fmt.Errorf("not deleting what the state dir's symlink points to: %w", err)
		}
		target, err := filepath.EvalSymlinks(l.cfg.StateDir)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(l.stdout, "stack: nothing to reset (%s does not exist)\n", l.cfg.StateDir)
			return nil
		}
		if err != nil {
			return fmt.Errorf("reset: resolve the symlink %s: %w", l.cfg.StateDir, err)
		}
		link, l.cfg.StateDir = l.cfg.StateDir, target
	}
	c := l.cfg
	client := procompose.NewClient(c.ProcessComposeSocket())
	defer client.Close()
	if err := l.errIfInUse(ctx, client, "processes of this stack are still running (%s); stop them first with `stack down`"); err != nil {
		return err
	}
	if _, err := os.Stat(c.StateDir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(l.stdout, "stack: nothing to reset (%s does not exist)\n", c.StateDir)
		return nil
	}
	// Another user's directory is theirs to delete (up refuses it too).
	if err := stackconfig.CheckOwned(c.StateDir); err != nil {
		return fmt.Errorf("not deleting the state dir: %w", err)
	}
	if name, err := l.foreignEntry(); err != nil {
		return fmt.Errorf("cannot list %s, so cannot tell whether it is a stack state dir; not deleting it: %w", c.StateDir, err)
	} else if name != "" {
		return fmt.Errorf("%s holds %q, which the launcher does not create, so it may not be a stack state dir; not deleting it (check STACK_STATE_DIR)", c.StateDir, name)
	}
	release, err := l.lockStateDir(ctx, client)
	if err != nil {
		return err
	}
	defer release()
	if !*yes {
		fmt.Fprintf(l.stderr, "This deletes %s: Redis data (every queued and processed transaction), logs,\n", c.StateDir)
		fmt.Fprint(l.stderr, "the PSP's ledger, built binaries and the generated JWT secret. Type \"yes\" to continue: ")
		answer, _ := bufio.NewReader(l.stdin).ReadString('\n')
		if f, ok := l.stdin.(*os.File); !ok || !isTerminal(f) {
			// The answer was not typed, so no newline ended the prompt's line.
			fmt.Fprintln(l.stderr)
		}
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("reset cancelled (--yes skips the question)")
		}
	}
	if err := os.RemoveAll(c.StateDir); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if link != "" {
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("reset: deleted %s, but not the symlink to it: %w", c.StateDir, err)
		}
		fmt.Fprintf(l.stdout, "stack: deleted %s and the symlink %s to it\n", c.StateDir, link)
		return nil
	}
	fmt.Fprintf(l.stdout, "stack: deleted %s\n", c.StateDir)
	return nil
}

// stateEntries are the names the launcher creates at the top of the state
// dir, taken from the paths it uses there, so that a new one cannot be left
// out here (run/ once was, and reset refused every state dir that had been up).
func (l *launcher) stateEntries() map[string]bool {
	c := l.cfg
	known := make(map[string]bool)
	for _, p := range []string{
		c.RedisSocket(), c.RunDir(), c.LogDir(), c.LedgerFile(), c.BinDir(), c.SecretFile(),
		c.ProcessComposeSocket(), l.pidFile(), c.StateMarkerFile(), l.lockFile(),
	} {
		if rel, err := filepath.Rel(c.StateDir, p); err == nil && filepath.IsLocal(rel) {
			known[strings.Split(filepath.ToSlash(rel), "/")[0]] = true
		}
	}
	return known
}

// foreignEntry returns the first entry of the state dir that the launcher
// does not create, "" when there is none or when the directory is marked as
// a state dir (StateMarkerFile); an error when it cannot be listed.
func (l *launcher) foreignEntry() (string, error) {
	c := l.cfg
	entries, err := os.ReadDir(c.StateDir)
	if err != nil {
		return "", err
	}
	if isFile(c.StateMarkerFile()) {
		return "", nil
	}
	known := l.stateEntries()
	for _, e := range entries {
		if !known[e.Name()] {
			return e.Name(), nil
		}
	}
	return "", nil
}

// refuseForeignStateDir refuses a state dir that already holds anything the
// launcher does not create, before up restricts it to mode 0700 and writes
// into it: STACK_STATE_DIR=$HOME or /tmp by mistake. A missing or empty
// directory is fine.
func (l *launcher) refuseForeignStateDir() error {
	c := l.cfg
	name, err := l.foreignEntry()
	if errors.Is(err, os.ErrNotExist) || (err == nil && name == "") {
		return nil
	}
	where := c.StateDirNote()
	if err != nil {
		return fmt.Errorf("state dir %s: %w%s", c.StateDir, err, where)
	}
	return fmt.Errorf("state dir %s holds %q, which the launcher does not create, so it may not be a stack state dir; not using it: point STACK_STATE_DIR at a new or empty directory%s", c.StateDir, name, where)
}
