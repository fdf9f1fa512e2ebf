// Package users is auth-api's user database: a JSON array of
// {"id", "username", "password", "enabled"} read once at start (USERS_FILE),
// or the reference users embedded in the binary. Passwords are plaintext,
// compared in constant time, or bcrypt hashes ($2a$, $2b$, $2y$) of a cost up
// to MaxBcryptCost, compared at most LimitBcrypt at once, with a bounded
// number of logins waiting for a turn, and none once StopWaiting is called.
package users

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/acme-payments/platform/internal/regularfile"
)

// reference holds the contract's reference users: alice (1, enabled), becky
// (2, enabled) and charlie (3, not enabled), all with password "password".
//
//go:embed users.json
var reference []byte

// ReferenceSource names the embedded user list in errors and logs.
const ReferenceSource = "embedded reference users"

// Authentication outcomes; auth-api maps them to 404, 401 and 503.
var (
	ErrNotFound        = errors.New("user not found")
	ErrInvalidPassword = errors.New("invalid password")
	// ErrNotChecked: the password was not compared, because the login's
	// context ended before a bcrypt slot was free (LimitBcrypt; it comes
	// wrapped with the context's error), or because too many logins were
	// waiting already (as ErrTooManyWaiting).
	ErrNotChecked = errors.New("password not checked")
	// ErrTooManyWaiting: every bcrypt slot was taken and as many logins as
	// may wait were waiting (LimitBcrypt), so the login was refused at
	// once, without a comparison. It wraps ErrNotChecked.
	ErrTooManyWaiting = fmt.Errorf("%w: too many bcrypt logins waiting", ErrNotChecked)
	// ErrStopping: StopWaiting was called (the server is stopping) and
	// every bcrypt slot was taken, so the login was answered at once, or
	// left its wait, without a comparison. It wraps ErrNotChecked.
	ErrStopping = fmt.Errorf("%w: the server is stopping", ErrNotChecked)
)

// maxBcryptPassword is the longest password bcrypt looks at; longer ones would
// match on their first 72 bytes alone, so they are refused outright.
const maxBcryptPassword = 72

// MaxBcryptCost is the highest bcrypt cost a users file may hold. bcrypt
// reads up to 31, and each step doubles the CPU time of every login. Measured
// with BenchmarkAuthenticateBcrypt on the 2-core dev machine (AMD EPYC, Go
// 1.26): one compare costs about 60 ms at cost 10 (bcrypt.DefaultCost), 0.24 s
// at 12 and 0.95 s at 14; so about 1.9 s at 15, a minute at 20 and 35 hours
// at 31, a core busy all along. 14 is the highest cost whose login stays under
// a second here, 16 times the default's work, and above what password-storage
// guidance asks for (10 or more); a higher cost would mostly let one request
// hold a core for seconds. Hashes cannot be rehashed without the passwords,
// so the bound errs on the generous side.
const MaxBcryptCost = 14

// User is an authenticated user, without their password.
type User struct {
	ID       int64
	Username string
	Enabled  bool
}

// DB is a read-only set of users, safe for concurrent use.
type DB struct {
	byName map[string]*entry
	// warnings say what is unsafe about the file the users came from
	// (Load); the users load all the same.
	warnings []string
	// compare is bcrypt.CompareHashAndPassword; tests put a stand-in here
	// to count and hold the comparisons.
	compare func(hash, password []byte) error
	// bcryptSlots holds one token per bcrypt comparison under way; its
	// capacity is how many may run at once (LimitBcrypt).
	bcryptSlots chan struct{}
	// bcryptAdmitted holds one token per bcrypt login comparing or waiting
	// for a slot; its capacity is the slots plus the logins that may wait.
	// A login that finds it full is refused at once.
	bcryptAdmitted chan struct{}
	// stopWaiting is closed by StopWaiting: from then on no login waits
	// for a slot.
	stopWaiting chan struct{}
	stopOnce    sync.Once
}

type entry struct {
	user   User
	bcrypt []byte   // the hash, for bcrypt users
	plain  [32]byte // SHA-256 of the plaintext password, for the others
}

// Load reads the users file at path (auth-api's USERS_FILE), or the
// embedded reference users when path is "". Errors name the variable and the
// file and say what is wrong with it.
func Load(path string) (*DB, error) {
	if path == "" {
		return Parse(reference, ReferenceSource)
	}
	// Stat first: open(2) of a named pipe waits for a writer, for good,
	// and a device or a directory is no file of users either.
	if kind := regularfile.Irregular(path); kind != "" {
		return nil, fmt.Errorf("USERS_FILE %s is not a regular file (%s): it must name a JSON file of users", path, kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("USERS_FILE: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("USERS_FILE: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("USERS_FILE: %w", err)
	}
	db, err := Parse(data, "USERS_FILE "+path)
	if err != nil {
		return nil, err
	}
	db.warnings = fileWarnings(path, fi.Mode().Perm(), db.plaintext())
	return db, nil
}

// fileWarnings says what is unsafe about a users file with mode perm that
// holds plain passwords stored as plaintext: others who can write it decide
// who logs in, and others who can read it know those passwords.
func fileWarnings(path string, perm os.FileMode, plain int) []string {
	var w []string
	if perm&0o022 != 0 {
		w = append(w, fmt.Sprintf("USERS_FILE %s is writable by other users (mode %04o): they can change who logs in; chmod 600", path, perm))
	}
	if plain > 0 && perm&0o044 != 0 {
		passwords := "passwords"
		if plain == 1 {
			passwords = "password"
		}
		w = append(w, fmt.Sprintf("USERS_FILE %s holds %d plaintext %s and is readable by other users (mode %04o); chmod 600, or store bcrypt hashes", path, plain, passwords, perm))
	}
	return w
}

// Warnings says what is unsafe about the users file (its mode), one
// sentence each; none for the reference users.
func (db *DB) Warnings() []string { return db.warnings }

// plaintext counts the users whose password is stored as plaintext.
func (db *DB) plaintext() int {
	n := 0
	for _, e := range db.byName {
		if e.bcrypt == nil {
			n++
		}
	}
	return n
}

// fileUser is one element of the users file; pointers tell missing fields
// from zero values.
type fileUser struct {
	ID       *int64  `json:"id"`
	Username *string `json:"username"`
	Password *string `json:"password"`
	Enabled  *bool   `json:"enabled"`
}

// Parse builds a DB from the JSON of a users file; source names it in errors.
func Parse(data []byte, source string) (*DB, error) {
	// Unknown fields decode and are refused below, by checkFieldNames, which
	// names the user they are in.
	dec := json.NewDecoder(bytes.NewReader(data))
	var list []fileUser
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%s: %s", source, explainDecode(data, err))
	}
	// Only white space may follow (dec.More would miss a stray "]" or "}").
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: unexpected data after the JSON array", source)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no users", source)
	}
	// encoding/json matched the keys case-insensitively, the last of two
	// equal ones winning: check them as written.
	keys, err := fieldNames(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}

	db := &DB{byName: make(map[string]*entry, len(list)), compare: bcrypt.CompareHashAndPassword,
		stopWaiting: make(chan struct{})}
	db.LimitBcrypt(0, 0)
	ids := make(map[int64]string, len(list))
	for i, u := range list {
		where := fmt.Sprintf("%s: user #%d", source, i+1)
		if err := checkFieldNames(keys[i]); err != nil {
			if u.Username != nil {
				where += fmt.Sprintf(" (%s)", *u.Username)
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		switch {
		case u.ID == nil:
			return nil, fmt.Errorf("%s: missing \"id\"", where)
		case u.Username == nil || *u.Username == "":
			return nil, fmt.Errorf("%s: missing or empty \"username\"", where)
		case u.Password == nil || *u.Password == "":
			return nil, fmt.Errorf("%s (%s): missing or empty \"password\"", where, *u.Username)
		case u.Enabled == nil:
			return nil, fmt.Errorf("%s (%s): missing \"enabled\"", where, *u.Username)
		case *u.ID <= 0:
			return nil, fmt.Errorf("%s (%s): \"id\" must be a positive integer, got %d", where, *u.Username, *u.ID)
		}
		name := *u.Username
		if _, dup := db.byName[name]; dup {
			return nil, fmt.Errorf("%s: duplicate username %q", where, name)
		}
		if other, dup := ids[*u.ID]; dup {
			return nil, fmt.Errorf("%s (%s): duplicate id %d (also %s)", where, name, *u.ID, other)
		}
		ids[*u.ID] = name

		e := &entry{user: User{ID: *u.ID, Username: name, Enabled: *u.Enabled}}
		if isBcrypt(*u.Password) {
			if err := checkBcrypt(*u.Password); err != nil {
				return nil, fmt.Errorf("%s (%s): malformed bcrypt hash: %w", where, name, err)
			}
			if cost, _ := bcrypt.Cost([]byte(*u.Password)); cost > MaxBcryptCost {
				return nil, fmt.Errorf("%s (%s): bcrypt cost %d is over the maximum of %d: each step doubles the CPU time of a login (cost 14 takes about 1 s, cost 20 a minute); store a hash of cost %d or less",
					where, name, cost, MaxBcryptCost, MaxBcryptCost)
			}
			e.bcrypt = []byte(*u.Password)
		} else {
			if looksLikeHash(*u.Password) {
				return nil, fmt.Errorf("%s (%s): \"password\" looks like a password hash, but only bcrypt ($2a$, $2b$, $2y$, nothing around it) is read as one; as plaintext the hash itself would be the password", where, name)
			}
			e.plain = sha256.Sum256([]byte(*u.Password))
		}
		db.byName[name] = e
	}
	return db, nil
}

// explainDecode says in a users file's terms why data did not decode into
// []fileUser, and where: a JSON value of the wrong kind by its field, the
// kind it must be and its line and column, not by Go's type names.
func explainDecode(data []byte, err error) string {
	const shape = `a JSON array of users, each {"id": 1, "username": "alice", "password": "...", "enabled": true}`
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		// Offset is just past the value's first token (an object's "{").
		at := lineColumn(data, typeErr.Offset-1)
		got := jsonKind(typeErr.Value)
		switch typeErr.Field {
		case "":
			if typeErr.Type.Kind() == reflect.Slice {
				return fmt.Sprintf("%s: the file must be %s; got %s", at, shape, got)
			}
			return fmt.Sprintf("%s: each user must be a JSON object {\"id\", \"username\", \"password\", \"enabled\"}, got %s", at, got)
		case "id":
			return fmt.Sprintf("%s: \"id\" must be a whole number from 1 to %d, got %s", at, int64(math.MaxInt64), got)
		case "enabled":
			return fmt.Sprintf("%s: \"enabled\" must be true or false, got %s", at, got)
		default:
			return fmt.Sprintf("%s: %q must be a string, got %s", at, typeErr.Field, got)
		}
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("%s: not valid JSON (%s); the file must be %s", lineColumn(data, syntaxErr.Offset-1), syntaxErr.Error(), shape)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("the JSON ends early, at byte %d: is the file cut short? It must be %s", len(data), shape)
	case errors.Is(err, io.EOF):
		return "the file is empty; it must be " + shape
	}
	return fmt.Sprintf("not %s: %v", shape, err)
}

// jsonKind names the JSON value encoding/json's UnmarshalTypeError.Value
// describes: "number 1.5" is the number 1.5, "object" an object.
func jsonKind(value string) string {
	switch {
	case value == "array" || value == "object" || value == "string" || value == "number":
		return "a JSON " + value
	case value == "bool":
		return "a JSON boolean"
	case strings.HasPrefix(value, "number "):
		return "the number " + strings.TrimPrefix(value, "number ")
	}
	return value
}

// lineColumn is where the byte at offset of data falls, as "line 3, column 14"
// (both from 1).
func lineColumn(data []byte, offset int64) string {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	column := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, column)
}

// fieldNames returns the keys of each object in data, a JSON array of
// objects that has already decoded into []fileUser, as they are written.
func fieldNames(data []byte) ([][]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // [
		return nil, err
	}
	var all [][]string
	for dec.More() {
		if _, err := dec.Token(); err != nil { // {
			return nil, err
		}
		var keys []string
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			k, _ := key.(string)
			keys = append(keys, k)
		}
		if _, err := dec.Token(); err != nil { // }
			return nil, err
		}
		all = append(all, keys)
	}
	return all, nil
}

// checkFieldNames refuses a user's key that is not exactly one of the four,
// or one given twice.
func checkFieldNames(keys []string) error {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		switch k {
		case "id", "username", "password", "enabled":
		default:
			return fmt.Errorf("unknown field %q (the fields are \"id\", \"username\", \"password\" and \"enabled\", in lower case)", k)
		}
		if seen[k] {
			return fmt.Errorf("field %q given twice", k)
		}
		seen[k] = true
	}
	return nil
}

// isBcrypt reports whether a stored password is a bcrypt hash rather than
// plaintext.
func isBcrypt(p string) bool {
	return strings.HasPrefix(p, "$2a$") || strings.HasPrefix(p, "$2b$") || strings.HasPrefix(p, "$2y$")
}

// looksLikeHash reports whether a password that is not a bcrypt hash starts,
// white space aside, like a modular crypt hash ("$id$": $2x$, $6$,
// $argon2id$...), which as plaintext would make the hash the password.
func looksLikeHash(p string) bool {
	p = strings.TrimSpace(p)
	if len(p) < 3 || p[0] != '$' {
		return false
	}
	end := strings.IndexByte(p[1:], '$')
	if end < 1 || end > 16 {
		return false
	}
	for _, c := range p[1 : 1+end] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// bcryptAlphabet is bcrypt's base64 alphabet, for the salt and the digest.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkBcrypt checks a whole bcrypt hash: "$2b$", a two-digit cost in
// bcrypt's range, "$", then 53 characters of its alphabet (22 of salt, 31 of
// digest), 60 bytes in all. bcrypt.Cost alone reads only the prefix and the
// cost, so a truncated or garbled hash would load and then refuse every
// password.
func checkBcrypt(hash string) error {
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return err
	}
	const prefix = len("$2b$10$")
	if len(hash) != prefix+53 {
		return fmt.Errorf("%d bytes, want 60", len(hash))
	}
	if hash[prefix-1] != '$' {
		return errors.New(`no "$" after the cost`)
	}
	if i := strings.IndexFunc(hash[prefix:], func(r rune) bool { return !strings.ContainsRune(bcryptAlphabet, r) }); i >= 0 {
		return fmt.Errorf("byte %d is not in bcrypt's base64 alphabet", prefix+i+1)
	}
	return nil
}

// Len returns the number of users.
func (db *DB) Len() int { return len(db.byName) }

// LimitBcrypt sets how many bcrypt comparisons may run at once, slots ≥ 1,
// and how many bcrypt logins may wait for one of them, waiting ≥ 1: at most
// slots+waiting are under way, comparing or waiting, and a bcrypt login that
// comes when they are is refused at once (ErrTooManyWaiting). slots ≤ 0
// means the default, one fewer than GOMAXPROCS (at least 1); waiting ≤ 0,
// DefaultWaitingPerSlot per slot. Each comparison holds a core for its whole
// length (MaxBcryptCost), so more at once would not end sooner: they would
// share the cores, and every other request with them. The core left over
// keeps the other requests' answers prompt: with 32 logins of a cost-12 user
// under way on the 2-core dev machine, a plaintext login took up to 1.0–1.5 s
// unbounded, up to 49–56 ms with 2 slots and up to 2 ms with 1
// (RELIABILITY.md D68). Call it before the first Authenticate.
func (db *DB) LimitBcrypt(slots, waiting int) {
	if slots <= 0 {
		slots = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if waiting <= 0 {
		waiting = DefaultWaitingPerSlot * slots
	}
	db.bcryptSlots = make(chan struct{}, slots)
	db.bcryptAdmitted = make(chan struct{}, slots+waiting)
}

// DefaultWaitingPerSlot is how many bcrypt logins may wait per slot unless
// LimitBcrypt is told otherwise. A login waits for the comparisons ahead of
// it, so the logins that wait should be about as many as the slots get
// through before the client gives up: at MaxBcryptCost (0.95 s on the 2-core
// dev machine) a slot compares 16 in about 15 s, HAProxy's `timeout server`
// for auth-api, after which the router answers 504 and the login's wait was
// for nothing; at the default cost 10 (60 ms) 16 take about a second. A
// login refused at once is a 503 that costs nothing and says to try again;
// one that waits holds a goroutine, its connection and its request.
const DefaultWaitingPerSlot = 16

// StopWaiting ends the waits for a bcrypt slot, for good: every login
// waiting for one returns ErrStopping at once, and so does every later
// bcrypt login that finds all slots taken. The comparisons under way finish,
// a login that finds a slot free is still compared, and plaintext and
// unknown users are answered as ever. auth-api calls it when its drain
// begins, so that the logins waiting do not hold the drain, only to be cut
// off at its end (RELIABILITY.md D73). Calling it again does nothing.
func (db *DB) StopWaiting() {
	db.stopOnce.Do(func() { close(db.stopWaiting) })
}

// BcryptLimit is how many bcrypt comparisons may run at once (LimitBcrypt).
func (db *DB) BcryptLimit() int { return cap(db.bcryptSlots) }

// BcryptWaitingLimit is how many bcrypt logins may wait for a slot
// (LimitBcrypt).
func (db *DB) BcryptWaitingLimit() int { return cap(db.bcryptAdmitted) - cap(db.bcryptSlots) }

// Exists reports whether a user is named username (exact match), comparing
// no password: for a login whose password no stored one can equal.
func (db *DB) Exists(username string) bool {
	_, ok := db.byName[username]
	return ok
}

// Authenticate returns the user named username (exact match) when password is
// theirs, ErrNotFound when there is no such user, and ErrInvalidPassword
// otherwise. Plaintext passwords are compared in constant time (as SHA-256
// digests, so the length does not leak either), at once. A bcrypt user costs
// one bcrypt comparison, which waits for a slot (LimitBcrypt; first come,
// first served); when ctx ends first, or has ended already, the password is
// not compared and the error is ErrNotChecked, when too many logins wait
// already, it is refused at once with ErrTooManyWaiting, and once
// StopWaiting is called it waits no more: ErrStopping. Unknown users,
// plaintext users and passwords over 72 bytes never wait, nor are refused.
// Nothing hides which users exist: the contract answers them 404 and the
// others 401.
func (db *DB) Authenticate(ctx context.Context, username, password string) (User, error) {
	e, ok := db.byName[username]
	if !ok {
		return User{}, ErrNotFound
	}
	if e.bcrypt != nil {
		if len(password) > maxBcryptPassword {
			return User{}, ErrInvalidPassword
		}
		if err := db.compareBcrypt(ctx, e.bcrypt, password); err != nil {
			return User{}, err
		}
		return e.user, nil
	}
	sum := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(sum[:], e.plain[:]) != 1 {
		return User{}, ErrInvalidPassword
	}
	return e.user, nil
}

// compareBcrypt compares password with hash once a slot is free, or returns
// ErrNotChecked, wrapping the context's error, when ctx ends first,
// ErrTooManyWaiting, at once, when all slots are taken and as many logins as
// may wait are waiting, or ErrStopping when all slots are taken once
// StopWaiting has been called, or when it is called during the wait. A
// context already over gets no comparison even with a slot free: nobody
// waits for the answer.
func (db *DB) compareBcrypt(ctx context.Context, hash []byte, password string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrNotChecked, context.Cause(ctx))
	}
	select {
	case db.bcryptAdmitted <- struct{}{}:
	default:
		return fmt.Errorf("%w: the most allowed, %d comparing and %d waiting, are under way", ErrTooManyWaiting, db.BcryptLimit(), db.BcryptWaitingLimit())
	}
	defer func() { <-db.bcryptAdmitted }()
	select {
	case db.bcryptSlots <- struct{}{}: // a slot is free: no wait, stopping or not
	default:
		select {
		case db.bcryptSlots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for one of %d bcrypt slots: %w", ErrNotChecked, cap(db.bcryptSlots), context.Cause(ctx))
		case <-db.stopWaiting: // before the wait or during it
			return fmt.Errorf("%w: all %d bcrypt slots are comparing, and no login waits for one any more", ErrStopping, cap(db.bcryptSlots))
		}
	}
	defer func() { <-db.bcryptSlots }()
	if db.compare(hash, []byte(password)) != nil {
		return ErrInvalidPassword
	}
	return nil
}
