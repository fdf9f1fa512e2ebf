package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/users"
)

// tokenResponse is the body of a successful POST /token.
type tokenResponse struct {
	Token string `json:"token"`
}

// handleToken authenticates the body's username and password and answers a
// token, or the contract's error. Every failure is logged with the request
// id, a reason and who tried (loggedUsername), never the password. On the
// TCP port, a username with too many failed logins gets a 429 instead,
// logged at warn (direct: failureLimit; nil limits nothing).
func handleToken(log *slog.Logger, db *users.DB, issuer *token.Issuer, direct *failureLimit) http.Handler {
	fingerprint := newFingerprinter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		req, err := readTokenRequest(r)
		limited := err == nil && direct.appliesTo(r)
		if limited {
			if wait := direct.admit(db, req); wait > 0 {
				log.WarnContext(ctx, "login refused: too many failed logins on the TCP port", loggedUsername(db, fingerprint, req.Username),
					"reason", "too_many_failed_logins", "status", http.StatusTooManyRequests, "retry_after", retryAfter(wait))
				w.Header().Set("Retry-After", retryAfter(wait))
				httpx.WriteError(w, http.StatusTooManyRequests, direct.message())
				return
			}
		}
		if err == nil {
			var user users.User
			user, err = func() (user users.User, err error) {
				if limited { // deferred: a panic must not leave the login counted as under way for good
					defer func() {
						direct.done(db, req, errors.Is(err, users.ErrNotFound) || errors.Is(err, users.ErrInvalidPassword))
					}()
				}
				return authenticate(ctx, db, req)
			}()
			if err == nil {
				raw, err := issuer.Issue(user.ID, user.Username, user.Enabled)
				if err != nil {
					log.ErrorContext(ctx, "sign token", "user_id", user.ID, "error", err)
					httpx.WriteError(w, http.StatusInternalServerError, "Internal server error")
					return
				}
				log.DebugContext(ctx, "token issued", "user_id", user.ID, "username", user.Username)
				httpx.WriteJSON(w, http.StatusOK, tokenResponse{Token: raw})
				return
			}
		}
		status, msg, reason := loginFailure(err)
		log.InfoContext(ctx, "login failed", loggedUsername(db, fingerprint, req.Username), "reason", reason, "status", status)
		httpx.WriteError(w, status, msg)
	})
}

// authenticate checks req's username and password against db. A username
// or password that is not a JSON string equals no user's, as in the original
// (Python's == was False, not an error): no such user, or, for a user that
// exists, a wrong password, both without a comparison.
func authenticate(ctx context.Context, db *users.DB, req tokenRequest) (users.User, error) {
	switch {
	case req.UsernameNotString:
		return users.User{}, users.ErrNotFound
	case req.PasswordNotString:
		if !db.Exists(req.Username) {
			return users.User{}, users.ErrNotFound
		}
		return users.User{}, users.ErrInvalidPassword
	}
	return db.Authenticate(ctx, req.Username, req.Password)
}

// readTokenRequest reads and decodes the request body (capped by the
// middleware; a larger one is a 413).
func readTokenRequest(r *http.Request) (tokenRequest, error) {
	body, err := httpx.ReadJSONBody(r)
	if err != nil {
		return tokenRequest{}, err
	}
	return decodeTokenRequest(body)
}

// loginFailure is the one place that maps a failed login to the status and
// error text the client sees, and to the reason logged.
func loginFailure(err error) (status int, msg, reason string) {
	var de *httpx.DecodeError
	switch {
	case errors.Is(err, users.ErrNotFound):
		return http.StatusNotFound, "User not found", "user_not_found"
	case errors.Is(err, users.ErrInvalidPassword):
		return http.StatusUnauthorized, "Invalid password", "invalid_password"
	case errors.Is(err, users.ErrStopping):
		// The drain has begun with every bcrypt slot taken: the client
		// reads this, and its next try reaches the next process (or
		// HAProxy's own 503 until it is up), so it says why, as HAProxy's
		// "no healthy backend, try again shortly" does, not that too many
		// logins are in progress (RELIABILITY.md D73).
		return http.StatusServiceUnavailable, "Password not checked: the server is stopping; try again shortly",
			"password_not_checked: " + strings.TrimPrefix(err.Error(), users.ErrNotChecked.Error()+": ")
	case errors.Is(err, users.ErrNotChecked):
		// The password was not compared: the request's context ended while
		// the login waited for a bcrypt slot (the client went away: nobody
		// reads the 503, but a request must not end in net/http's empty
		// 200, and the log and any proxy see it), or too many logins waited
		// already (users.ErrTooManyWaiting). Beyond the contract, like
		// core-api's 503s; the reason logged says which.
		return http.StatusServiceUnavailable, "Password not checked: too many logins in progress; try again",
			"password_not_checked: " + strings.TrimPrefix(err.Error(), users.ErrNotChecked.Error()+": ")
	case errors.As(err, &de):
		return de.Status, de.Msg, "bad_request: " + de.Msg
	}
	return http.StatusInternalServerError, "Internal server error", err.Error()
}

// loggedUsername is what a failed login's line says of its username: the
// name itself when it names a user of the users file (cut by clip), and
// otherwise, since a user who typed their password into the username field
// sent it there, only username_fingerprint, a keyed fingerprint of it
// (fingerprinter): equal within this process for equal names, so that one
// client retrying one wrong name shows as such, and telling nothing of the
// name to whoever reads the log. A username that is blank or not a JSON
// string is not logged at all (the reason says which).
func loggedUsername(db *users.DB, fingerprint fingerprinter, username string) slog.Attr {
	switch {
	case username == "":
		return slog.Attr{}
	case db.Exists(username):
		return slog.String("username", clip(username))
	}
	return slog.String("username_fingerprint", fingerprint(username))
}

// fingerprinter maps an unknown username to 8 hex digits (32 bits) of its
// HMAC-SHA256 under a key of its own.
type fingerprinter func(username string) string

// newFingerprinter returns a fingerprinter keyed with 32 random bytes that
// live only in this process's memory, never logged: a line's fingerprint
// cannot be reversed, nor a guess tested against it, without the key
// (a bare hash of a password could be, by trying candidates), and
// fingerprints of one name differ between processes and restarts. 32 bits
// are enough to tell apart the names one process sees: among 10,000
// different names, some two share a fingerprint with a chance of about 1 %.
func newFingerprinter() fingerprinter {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	return func(username string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(username))
		return hex.EncodeToString(mac.Sum(nil)[:4])
	}
}

// maxLoggedUsername bounds the username copied into logs.
const maxLoggedUsername = 64

// clip shortens s to maxLoggedUsername bytes without splitting a character.
func clip(s string) string {
	if len(s) <= maxLoggedUsername {
		return s
	}
	i := maxLoggedUsername
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
