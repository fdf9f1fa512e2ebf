package users

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks Parse, the decoder of USERS_FILE, on arbitrary bytes: it
// never panics; every error names the file; and a file it accepts holds
// exactly the users encoding/json reads from it, each of them (bcrypt users
// aside: a fuzzed cost, up to MaxBcryptCost, could take a second a compare)
// authenticated by their password and by no other.
func FuzzParse(f *testing.F) {
	f.Add(reference)
	f.Add([]byte(`[{"id":1,"username":"a","password":"p","enabled":true}]`))
	f.Add([]byte(`[{"id":1,"username":"a","password":"$2a$04$abc","enabled":true}]`))
	f.Add([]byte(`[{"ID":1,"Username":"a","Password":"p","Enabled":false,"x":1}]`))
	f.Add([]byte(`[{"id":1,"username":"a","password":"p","enabled":true},{"id":1,"username":"b","password":"p","enabled":true}] []`))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := Parse(data, "users file x.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users file x.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		var list []struct {
			ID                 int64
			Username, Password string
			Enabled            bool
		}
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if db.Len() != len(list) {
			t.Fatalf("got %d users, encoding/json reads %d", db.Len(), len(list))
		}
		for _, u := range list {
			if isBcrypt(u.Password) {
				continue
			}
			want := User{ID: u.ID, Username: u.Username, Enabled: u.Enabled}
			if got, err := db.Authenticate(t.Context(), u.Username, u.Password); err != nil || got != want {
				t.Fatalf("Authenticate(%q, its password): got %+v, %v; want %+v", u.Username, got, err, want)
			}
			if _, err := db.Authenticate(t.Context(), u.Username, u.Password+"x"); !errors.Is(err, ErrInvalidPassword) {
				t.Fatalf("Authenticate(%q, another password): got %v, want ErrInvalidPassword", u.Username, err)
			}
		}
	})
}
