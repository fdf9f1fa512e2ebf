package users

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// validHash is bcrypt("password") at cost 4, for the malformed-hash rows.
const validHash = "$2a$04$cRWBifNpODLX19.VVLP1hOIlhqD/FOuTi5PGjwkZJ/fPnCBbIRY1y"

// bcryptUser is a users file of one user whose password field is hash.
func bcryptUser(hash string) string {
	return fmt.Sprintf(`[{"id":1,"username":"a","password":%q,"enabled":true}]`, hash)
}

func mustHash(t *testing.T, password, prefix string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(h[len(prefix):])
}

func TestReferenceUsers(t *testing.T) {
	db, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := db.Len(), 3; got != want {
		t.Fatalf("got %d users, want %d", got, want)
	}
	tests := []struct {
		username, password string
		want               User
		wantErr            error
	}{
		{"alice", "password", User{1, "alice", true}, nil},
		{"becky", "password", User{2, "becky", true}, nil},
		{"charlie", "password", User{3, "charlie", false}, nil},
		{"alice", "Password", User{}, ErrInvalidPassword},
		{"alice", "password ", User{}, ErrInvalidPassword},
		{"alice", "passwor", User{}, ErrInvalidPassword},
		{"alice", "", User{}, ErrInvalidPassword},
		{"Alice", "password", User{}, ErrNotFound},
		{"alice ", "password", User{}, ErrNotFound},
		{"dave", "password", User{}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.username+"/"+tt.password, func(t *testing.T) {
			got, err := db.Authenticate(t.Context(), tt.username, tt.password)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
			if got, want := db.Exists(tt.username), !errors.Is(tt.wantErr, ErrNotFound); got != want {
				t.Errorf("Exists(%q): got %v, want %v", tt.username, got, want)
			}
		})
	}
}

func TestBcryptUsers(t *testing.T) {
	long := strings.Repeat("x", 72)
	file := fmt.Sprintf(`[
		{"id": 1, "username": "a", "password": %q, "enabled": true},
		{"id": 2, "username": "b", "password": %q, "enabled": false},
		{"id": 3, "username": "y", "password": %q, "enabled": true},
		{"id": 4, "username": "long", "password": %q, "enabled": true},
		{"id": 5, "username": "plain", "password": "s3cret", "enabled": true}
	]`, mustHash(t, "pa", "$2a$"), mustHash(t, "pb", "$2b$"), mustHash(t, "py", "$2y$"), mustHash(t, long, "$2a$"))
	db, err := Load(writeFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		username, password string
		want               User
		wantErr            error
	}{
		{"a", "pa", User{1, "a", true}, nil},
		{"a", "pb", User{}, ErrInvalidPassword},
		{"b", "pb", User{2, "b", false}, nil},
		{"y", "py", User{3, "y", true}, nil},
		{"y", "", User{}, ErrInvalidPassword},
		{"long", long, User{4, "long", true}, nil},
		{"long", long + "and more", User{}, ErrInvalidPassword}, // bcrypt would ignore the tail
		{"plain", "s3cret", User{5, "plain", true}, nil},
		{"plain", "s3cre", User{}, ErrInvalidPassword},
	}
	for _, tt := range tests {
		t.Run(tt.username+"/"+tt.password, func(t *testing.T) {
			got, err := db.Authenticate(t.Context(), tt.username, tt.password)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // a substring of the error, besides the file name
	}{
		{"not JSON", `alice:password`, "line 1, column 1: not valid JSON (invalid character 'a' looking for beginning of value); the file must be a JSON array of users"},
		{"an object", `{"id": 1}`, "line 1, column 1: the file must be a JSON array of users, each {\"id\": 1, \"username\": \"alice\", \"password\": \"...\", \"enabled\": true}; got a JSON object"},
		{"a user not an object", "[\n  1\n]", "line 2, column 3: each user must be a JSON object {\"id\", \"username\", \"password\", \"enabled\"}, got a JSON number"},
		{"truncated", `[{"id": 1, "username": "a"`, "the JSON ends early, at byte 26: is the file cut short?"},
		{"empty file", ``, "the file is empty; it must be a JSON array of users"},
		{"trailing data", `[{"id":1,"username":"a","password":"p","enabled":true}] []`, "unexpected data"},
		{"empty", `[]`, "no users"},
		{"id a string", `[{"id":"1","username":"a","password":"p","enabled":true}]`, `line 1, column 10: "id" must be a whole number from 1 to 9223372036854775807, got a JSON string`},
		{"id a fraction", `[{"id":1.5,"username":"a","password":"p","enabled":true}]`, `"id" must be a whole number from 1 to 9223372036854775807, got the number 1.5`},
		{"id too large", `[{"id":9223372036854775808,"username":"a","password":"p","enabled":true}]`, `got the number 9223372036854775808`},
		{"username a number", "[{\"id\":1,\n\"username\":5,\"password\":\"p\",\"enabled\":true}]", `line 2, column 12: "username" must be a string, got a JSON number`},
		{"enabled a string", `[{"id":1,"username":"a","password":"p","enabled":"yes"}]`, `"enabled" must be true or false, got a JSON string`},
		{"unknown field holding an object", `[{"id":1,"username":"a","password":"p","enabled":true,"roles":{"admin":true}}]`, `user #1 (a): unknown field "roles"`},
		{"unknown field", `[{"id":1,"username":"a","password":"p","enabled":true,"admin":true}]`, "admin"},
		{"missing id", `[{"username":"a","password":"p","enabled":true}]`, `user #1: missing "id"`},
		{"missing username", `[{"id":1,"password":"p","enabled":true}]`, `missing or empty "username"`},
		{"empty username", `[{"id":1,"username":"","password":"p","enabled":true}]`, `missing or empty "username"`},
		{"missing password", `[{"id":1,"username":"a","enabled":true}]`, `(a): missing or empty "password"`},
		{"missing enabled", `[{"id":1,"username":"a","password":"p"}]`, `missing "enabled"`},
		{"zero id", `[{"id":0,"username":"a","password":"p","enabled":true}]`, "positive integer"},
		{"duplicate username", `[{"id":1,"username":"a","password":"p","enabled":true},{"id":2,"username":"a","password":"p","enabled":true}]`, `user #2: duplicate username "a"`},
		{"duplicate id", `[{"id":1,"username":"a","password":"p","enabled":true},{"id":1,"username":"b","password":"p","enabled":true}]`, "duplicate id 1"},
		{"malformed bcrypt", `[{"id":1,"username":"a","password":"$2a$10$short","enabled":true}]`, "malformed bcrypt hash"},
		{"bcrypt truncated to 59 bytes", bcryptUser(validHash[:59]), "malformed bcrypt hash"},
		{"bcrypt with trailing bytes", bcryptUser(validHash + "xyz"), "malformed bcrypt hash: 63 bytes"},
		{"bcrypt salt not base64", bcryptUser("$2a$04$" + strings.Repeat("!", 53)), "malformed bcrypt hash: byte 8 is not"},
		{"bcrypt cost too high", bcryptUser("$2a$32$" + validHash[7:]), "malformed bcrypt hash"},
		{"trailing ]", `[{"id":1,"username":"a","password":"p","enabled":true}]]`, "unexpected data"},
		{"trailing }", `[{"id":1,"username":"a","password":"p","enabled":true}] }`, "unexpected data"},
		{"trailing ] and more", `[{"id":1,"username":"a","password":"p","enabled":true}]] garbage`, "unexpected data"},
		// A hash auth-api does not take as one was the plaintext password:
		// the hash itself logged in, the user's password did not.
		{"bcrypt hash after a space", bcryptUser(" " + validHash), "looks like a password hash"},
		{"bcrypt hash before a newline", bcryptUser(validHash + "\n"), "malformed bcrypt hash"},
		{"bcrypt $2x$", bcryptUser("$2x$" + validHash[4:]), "looks like a password hash"},
		{"bcrypt $2$", bcryptUser("$2$" + validHash[4:]), "looks like a password hash"},
		{"sha512-crypt", bcryptUser("$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"), "looks like a password hash"},
		{"argon2id", bcryptUser("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"), "looks like a password hash"},
		// encoding/json matches field names case-insensitively, and the last
		// of two equal keys wins: each of these enabled a disabled user.
		{"field name in another case", `[{"id":1,"username":"a","password":"p","enabled":false,"Enabled":true}]`, `user #1 (a): unknown field "Enabled"`},
		{"field name in capitals", `[{"ID":1,"USERNAME":"a","PASSWORD":"p","ENABLED":true}]`, `user #1 (a): unknown field "ID"`},
		{"field given twice", `[{"id":1,"username":"a","password":"p","enabled":false,"enabled":true}]`, `user #1 (a): field "enabled" given twice`},
		{"second user's field given twice", `[{"id":1,"username":"a","password":"p","enabled":true},{"id":2,"username":"b","password":"p","password":"q","enabled":true}]`, `user #2 (b): field "password" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			db, err := Load(path)
			if err == nil {
				t.Fatalf("got a DB of %d users, want an error", db.Len())
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to name %s and say %q", err, path, tt.want)
			}
		})
	}
}

// TestBcryptCostLimit: a hash of a cost over MaxBcryptCost is refused at
// load, naming the file, the user, the cost and the maximum; one login at
// cost 31 would take about a day and a half of CPU. Loading checks only the
// hash's form, so these rows compare nothing.
func TestBcryptCostLimit(t *testing.T) {
	tests := []struct {
		cost    string
		wantErr string // "" when the hash loads
	}{
		{"04", ""},
		{"10", ""},
		{"14", ""},
		{"15", "user #1 (a): bcrypt cost 15 is over the maximum of 14"},
		{"20", "user #1 (a): bcrypt cost 20 is over the maximum of 14"},
		{"31", "user #1 (a): bcrypt cost 31 is over the maximum of 14"},
	}
	for _, tt := range tests {
		t.Run("cost "+tt.cost, func(t *testing.T) {
			path := writeFile(t, bcryptUser("$2a$"+tt.cost+validHash[6:]))
			db, err := Load(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want the hash to load", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got a DB of %d users, want an error", db.Len())
			}
			if !strings.Contains(err.Error(), "USERS_FILE "+path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %q, want it to name USERS_FILE %s and say %q", err, path, tt.wantErr)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
}

func BenchmarkAuthenticatePlaintext(b *testing.B) {
	db, err := Load("")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := db.Authenticate(b.Context(), "alice", "password"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidHashLoads guards TestLoadErrors' malformed-hash rows: the hash they
// cut or extend is itself a good one.
func TestValidHashLoads(t *testing.T) {
	db, err := Load(writeFile(t, bcryptUser(validHash)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(t.Context(), "a", "password"); err != nil {
		t.Errorf("got %v, want the password to match", err)
	}
}

// TestPlaintextWithDollarsLoads guards TestLoadErrors' hash-like rows:
// plaintext passwords with dollar signs that are not a "$id$" prefix load.
func TestPlaintextWithDollarsLoads(t *testing.T) {
	for _, pw := range []string{"pa$$word", "$5 note", "$$", "$", "100$", "$ x$y"} {
		db, err := Load(writeFile(t, bcryptUser(pw)))
		if err != nil {
			t.Errorf("%q: %v", pw, err)
			continue
		}
		if _, err := db.Authenticate(t.Context(), "a", pw); err != nil {
			t.Errorf("%q: got %v, want the password to match", pw, err)
		}
	}
}

// TestLoadWarnsAboutTheFilesMode: a users file others can write decides who
// logs in, and one others can read gives away its plaintext passwords (not
// its bcrypt hashes): each is a warning, and the users load all the same.
func TestLoadWarnsAboutTheFilesMode(t *testing.T) {
	plain := `[{"id":1,"username":"alice","password":"password","enabled":true}]`
	plain2 := `[{"id":1,"username":"alice","password":"password","enabled":true},{"id":2,"username":"bob","password":"secret","enabled":true}]`
	hashed := bcryptUser(validHash)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    []string // a substring of each warning, in order
	}{
		{"plaintext, owner only", plain, 0o600, nil},
		{"plaintext, readable by all", plain, 0o644, []string{"holds 1 plaintext password and is readable by other users (mode 0644)"}},
		{"two plaintext, readable by all", plain2, 0o644, []string{"holds 2 plaintext passwords and is readable by other users (mode 0644)"}},
		{"plaintext, group-readable", plain, 0o640, []string{"readable by other users (mode 0640)"}},
		{"bcrypt, readable by all", hashed, 0o644, nil},
		{"bcrypt, writable by all", hashed, 0o666, []string{"is writable by other users (mode 0666)"}},
		{"plaintext, writable by the group", plain, 0o660, []string{"writable by other users (mode 0660)", "readable by other users (mode 0660)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			db, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got := db.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("got warnings %q, want %d (%q)", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) || !strings.Contains(got[i], path) {
					t.Errorf("warning %d: got %q, want it to name %s and contain %q", i, got[i], path, w)
				}
			}
		})
	}
	if db, err := Load(""); err != nil || len(db.Warnings()) != 0 {
		t.Errorf("the reference users: got %v, %q; want no warning", err, db.Warnings())
	}
}

// BenchmarkAuthenticateBcrypt measures one login of a bcrypt user at the
// costs around MaxBcryptCost (its comment and the README quote the figures).
// Each cost doubles the time. Generating each hash costs one compare too.
func BenchmarkAuthenticateBcrypt(b *testing.B) {
	for _, cost := range []int{10, 12, 14} {
		h, err := bcrypt.GenerateFromPassword([]byte("password"), cost)
		if err != nil {
			b.Fatal(err)
		}
		db, err := Parse([]byte(bcryptUser(string(h))), "benchmark users")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("cost=%d", cost), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.Authenticate(b.Context(), "a", "password"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
