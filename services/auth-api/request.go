package main

import (
	"encoding/json"
	"net/http"

	"github.com/acme-payments/platform/internal/httpx"
)

// tokenRequest is a decoded POST /token body.
type tokenRequest struct {
	Username string
	Password string
	// UsernameNotString and PasswordNotString say the field was a JSON value
	// other than a string and not blank (a number, true, an array...): no
	// user's name or password equals it, as in the original, whose ==
	// comparisons were then False, so the login is the contract's "no such
	// user" or "wrong password" (authenticate). Username or Password is ""
	// then.
	UsernameNotString, PasswordNotString bool
}

// decodeTokenRequest parses body, a JSON object {"username", "password"},
// in the contract's order: blank username, then blank password. Blank means
// what the original's "not value" meant (missing, null, "", 0, false, [] or
// {}); any other non-string is flagged (tokenRequest). Keys match exactly.
// Every failure is an *httpx.DecodeError; the username, when it is a string,
// is returned with it for logging.
func decodeTokenRequest(body []byte) (tokenRequest, error) {
	var fields map[string]json.RawMessage
	if err := httpx.DecodeJSONBytes(body, &fields); err != nil {
		return tokenRequest{}, err
	}
	return tokenRequestFromFields(fields)
}

// tokenRequestFromFields validates the fields of a decoded POST /token body.
func tokenRequestFromFields(fields map[string]json.RawMessage) (tokenRequest, error) {
	user, userBlank, userOK := textField(fields["username"])
	pass, passBlank, passOK := textField(fields["password"])
	// The username goes back even with an error, for the failed-login log line.
	switch {
	case userBlank:
		return tokenRequest{}, unprocessable("Username is blank")
	case passBlank:
		return tokenRequest{Username: user}, unprocessable("Password is blank")
	}
	return tokenRequest{Username: user, Password: pass, UsernameNotString: !userOK, PasswordNotString: !passOK}, nil
}

// textField reads one field: its string value, whether it is blank (absent or
// falsy, httpx.Falsy), and whether it is a string at all.
func textField(raw json.RawMessage) (value string, blank, ok bool) {
	if httpx.Falsy(raw) {
		return "", true, false
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", false, false
	}
	return value, false, true
}

func unprocessable(msg string) error {
	return &httpx.DecodeError{Status: http.StatusUnprocessableEntity, Msg: msg}
}
