// Package httpx is the HTTP plumbing shared by every service: the one JSON
// error writer, request-id and body-limit middleware, health responses, server
// timeouts and the serve-then-drain helper.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBodyBytes caps every request body (1 MiB); larger bodies get a JSON 413.
const MaxBodyBytes = 1 << 20

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the platform's one error shape: {"error": "..."}, and "id"
// when the error is about a transaction the client may need to look up.
type ErrorBody struct {
	Error string `json:"error"`
	ID    string `json:"id,omitempty"`
}

// WriteError writes {"error": msg} with the given status. It and
// WriteErrorBody are the only way services report errors to clients, so the
// shape never drifts.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteErrorBody(w, status, ErrorBody{Error: msg})
}

// WriteErrorBody writes body with the given status: WriteError for an error
// that carries more than its text.
func WriteErrorBody(w http.ResponseWriter, status int, body ErrorBody) {
	WriteJSON(w, status, body)
}

// DecodeError is a request body that could not be decoded; its message is safe
// to show the client and its Status is the HTTP status to answer with.
type DecodeError struct {
	Status int
	Msg    string
}

func (e *DecodeError) Error() string { return e.Msg }

// ReadJSONBody checks that r declares a JSON body (Content-Type
// application/json or application/*+json, parameters allowed; anything else,
// or none, is a 415) and reads it (capped by Middleware; a larger body is a
// 413). Errors are *DecodeError.
func ReadJSONBody(r *http.Request) ([]byte, error) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return nil, &DecodeError{Status: http.StatusUnsupportedMediaType, Msg: "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &DecodeError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("Request body is larger than %d bytes", tooBig.Limit)}
		}
		return nil, &DecodeError{Status: http.StatusBadRequest, Msg: "Request body could not be read"}
	}
	return body, nil
}

// isJSONContentType accepts application/json and application/<x>+json.
func isJSONContentType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// jsonSpace is the white space JSON allows around values (RFC 8259); unlike
// bytes.TrimSpace it excludes Unicode spaces such as U+00A0.
const jsonSpace = " \t\r\n"

// DecodeJSONBytes decodes body (see ReadJSONBody) into dst, which must be a
// pointer to a struct or map. It rejects bodies that are not exactly one JSON
// object, with a *DecodeError that says why.
func DecodeJSONBytes(body []byte, dst any) error {
	trimmed := bytes.Trim(body, jsonSpace)
	if len(trimmed) == 0 {
		return &DecodeError{Status: http.StatusUnprocessableEntity, Msg: "Request body is empty; expected a JSON object"}
	}
	if trimmed[0] != '{' {
		return &DecodeError{Status: http.StatusUnprocessableEntity, Msg: "Request body must be a JSON object"}
	}
	if err := json.Unmarshal(trimmed, dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return &DecodeError{Status: http.StatusUnprocessableEntity, Msg: fmt.Sprintf("Field %q has the wrong type", typeErr.Field)}
		}
		return &DecodeError{Status: http.StatusUnprocessableEntity, Msg: "Request body is not valid JSON"}
	}
	return nil
}

// Falsy reports whether raw, a field of a decoded JSON object (nil when
// absent), is what the original Python services' "not value" took for blank:
// absent, null, false, "", 0 (any spelling of a zero number), [] or {}. The
// contract's "blank" checks of auth-api and core-api both mean this.
func Falsy(raw json.RawMessage) bool {
	if raw == nil {
		return true
	}
	switch string(raw) {
	case "null", "false", `""`, "[]", "{}":
		return true
	}
	if raw[0] == '[' || raw[0] == '{' {
		// Empty containers with inner white space.
		return len(strings.TrimSpace(string(raw[1:len(raw)-1]))) == 0
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		if bytes.ContainsAny(raw, ".eE") {
			// A float (Python's is float64, as Go's): zero also when it
			// underflows, as 1e-400 does; 1e400 is infinite, not zero.
			f, _ := strconv.ParseFloat(string(raw), 64)
			return f == 0
		}
		// An integer (Python's int) is zero when every digit is.
		return !bytes.ContainsAny(raw, "123456789")
	}
	return false
}
