package stackconfig

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/acme-payments/platform/internal/regularfile"
)

// ParseEnvFile reads KEY=value lines: blank lines and lines starting with '#'
// are skipped, an optional "export " prefix is dropped, a value may be wrapped
// in single or double quotes (taken literally, no escapes or expansion; a
// comment may follow the closing quote), and in an unquoted value " #" starts
// a comment. Errors name the line.
func ParseEnvFile(r io.Reader, name string) (map[string]string, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(r)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		// The errors never quote the line: it may hold JWT_SECRET's value
		// (JWT_SECRET: ..., a missing "="), and they reach terminals and CI
		// logs (RELIABILITY.md D55).
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: want KEY=value, got a line without \"=\"", name, n)
		case !validKey(key):
			return nil, fmt.Errorf("%s:%d: want KEY=value, got a name before \"=\" that is not letters, digits and _ (or starts with a digit)", name, n)
		}
		val = strings.TrimSpace(val)
		switch {
		case val != "" && (val[0] == '"' || val[0] == '\''):
			end := strings.IndexByte(val[1:], val[0]) + 1
			if end == 0 {
				return nil, fmt.Errorf("%s:%d: %s: no closing %c", name, n, key, val[0])
			}
			if rest := strings.TrimSpace(val[end+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, fmt.Errorf("%s:%d: %s: text after the closing %c (a comment starts with #)", name, n, key, val[0])
			}
			val = val[1:end]
		case strings.HasPrefix(val, "#"):
			val = ""
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
		}
		vals[key] = val
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: a line longer than %d bytes; a setting is one short line", name, n, bufio.MaxScanTokenSize)
		}
		var pathErr *os.PathError
		if errors.As(err, &pathErr) { // it names the file already
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return vals, nil
}

// ReadEnvFile is ParseEnvFile on a file; a missing file is an empty map when
// optional is true.
//
// A symlink to nothing is an error, not a missing file (its settings were
// meant to apply), and so is anything but a regular file: open(2) of a
// named pipe would wait for a writer for good. So is a file that a user
// other than root and this one owns or may write (checkChangers).
func ReadEnvFile(path string, optional bool) (map[string]string, error) {
	return readEnvFile(path, optional, true)
}

// readEnvFile is ReadEnvFile, which checks who may change the file only
// when checkChangersToo: not for one in a checkout that
// STACK_TRUSTED_CHECKOUT names (Layout.Trusted).
func readEnvFile(path string, optional, checkChangersToo bool) (map[string]string, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if target, lerr := os.Readlink(path); lerr == nil {
			return nil, fmt.Errorf("%s is a symlink to %s, which does not exist", path, target)
		}
		if optional {
			return map[string]string{}, nil
		}
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, regularfile.Kind(st.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Judged as opened: one that another user could have put there or can
	// change would hand them the stack (JWT_SECRET, REDIS_URL,
	// STACK_STATE_DIR, USERS_FILE); an installed launcher reads
	// stack.local.env from the current directory, /tmp say.
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if err := checkChangers(path, fi); err != nil && checkChangersToo {
		mend := ""
		if errors.As(err, new(modeError)) {
			mend = fmt.Sprintf(", or make it writable by its owner only (chmod go-w %s)", path)
		}
		return nil, fmt.Errorf("settings file %s: %w: its settings (JWT_SECRET, REDIS_URL, STACK_STATE_DIR, ...) would be another user's to choose; remove it, or run the launcher from another directory%s", path, err, mend)
	}
	return ParseEnvFile(f, path)
}

func validKey(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for _, c := range k {
		word := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !word {
			return false
		}
	}
	return true
}
