package txrequest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/httpx"
)

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		bearer string
		want   Transaction
	}{
		{"number amount", `{"token":"t","amount":100,"currency":"USD"}`, "", Transaction{"t", 100, "USD"}},
		{"digit string amount (httpie)", `{"token":"t","amount":"100","currency":"USD"}`, "", Transaction{"t", 100, "USD"}},
		{"leading zeros in a string", `{"token":"t","amount":"007","currency":"EUR"}`, "", Transaction{"t", 7, "EUR"}},
		{"one", `{"token":"t","amount":1,"currency":"GBP"}`, "", Transaction{"t", 1, "GBP"}},
		{"max amount", `{"token":"t","amount":1000000000,"currency":"JPY"}`, "", Transaction{"t", MaxAmount, "JPY"}},
		{"max amount as string", `{"token":"t","amount":"1000000000","currency":"JPY"}`, "", Transaction{"t", MaxAmount, "JPY"}},
		{"escaped digits", `{"token":"t","amount":"\u0031\u0032","currency":"\u0055SD"}`, "", Transaction{"t", 12, "USD"}},
		{"white space around the object", " \n{\"token\":\"t\",\"amount\":5,\"currency\":\"USD\"}\n ", "", Transaction{"t", 5, "USD"}},
		{"extra fields ignored", `{"token":"t","amount":5,"currency":"USD","note":[1,{"a":null}]}`, "", Transaction{"t", 5, "USD"}},
		{"escaped keys", `{"\u0074oken":"t","am\u006funt":5,"\u0063urrency":"USD"}`, "", Transaction{"t", 5, "USD"}},
		{"keys with other escapes are other keys", `{"token":"t","amount":5,"currency":"USD","tok\nen":"x","currency\u0000":"y"}`, "", Transaction{"t", 5, "USD"}},
		{"nested fields of the same name ignored", `{"x":{"token":"no","amount":9},"token":"t","amount":5,"y":["currency"],"currency":"USD"}`, "", Transaction{"t", 5, "USD"}},
		{"white space everywhere", " { \"token\" :\t\"t\" ,\r\n\"amount\" : 5 , \"currency\" : \"USD\" } ", "", Transaction{"t", 5, "USD"}},
		{"strings with braces and quotes", `{"a":"}{\"][","token":"t\"}","amount":5,"currency":"USD"}`, "", Transaction{"t\"}", 5, "USD"}},
		{"an ignored key given twice", `{"token":"t","amount":1,"memo":"a","memo":"b","currency":"USD"}`, "", Transaction{"t", 1, "USD"}},
		{"bearer when token missing", `{"amount":5,"currency":"USD"}`, "b", Transaction{"b", 5, "USD"}},
		{"bearer when token empty", `{"token":"","amount":5,"currency":"USD"}`, "b", Transaction{"b", 5, "USD"}},
		{"bearer when token null", `{"token":null,"amount":5,"currency":"USD"}`, "b", Transaction{"b", 5, "USD"}},
		{"body token wins over bearer", `{"token":"t","amount":5,"currency":"USD"}`, "b", Transaction{"t", 5, "USD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body), tt.bearer)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// manyKeys is n members `,"k<i>":1` of a JSON object, each key its own.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":1`, i)
	}
	return b.String()
}

func TestDecodeRejects(t *testing.T) {
	const (
		unproc = http.StatusUnprocessableEntity
	)
	tests := []struct {
		name       string
		body       string
		bearer     string
		wantStatus int
		wantMsg    string // "" means any message
	}{
		// Not a JSON object.
		{"empty body", ``, "", unproc, ""},
		{"white space only", " \n\t", "", unproc, ""},
		{"not JSON", `amount=100`, "", unproc, ""},
		{"array", `[{"token":"t"}]`, "", unproc, ""},
		{"string", `"x"`, "", unproc, ""},
		{"null", `null`, "", unproc, ""},
		{"truncated object", `{"token":"t",`, "", unproc, ""},
		{"trailing garbage", `{"token":"t","amount":1,"currency":"USD"}x`, "", unproc, ""},
		{"two objects", `{}{}`, "", unproc, ""},
		{"leading non-JSON white space (NBSP)", "\u00a0{\"token\":\"t\",\"amount\":1,\"currency\":\"USD\"}", "", unproc, ""},
		{"invalid JSON in an ignored field", `{"token":"t","amount":1,"currency":"USD","x":[1,}`, "", unproc, ""},
		{"invalid UTF-8 is still JSON", "{\"token\":\"t\",\"amount\":1,\"currency\":\"US\xff\"}", "", unproc, "Invalid currency code"},

		// A field given twice: the original took the last value; a reader
		// of the first would see another amount than the one charged.
		{"amount given twice", `{"token":"t","amount":1,"amount":1000,"currency":"USD"}`, "", unproc, "Field given twice: amount"},
		{"amount given twice, once escaped", `{"token":"t","amount":1,"\u0061mount":1000,"currency":"USD"}`, "", unproc, "Field given twice: amount"},
		{"currency given twice", `{"token":"t","amount":1,"currency":"EUR","currency":"USD"}`, "", unproc, "Field given twice: currency"},
		{"token given twice", `{"token":"a","token":"b","amount":1,"currency":"USD"}`, "", unproc, "Field given twice: token"},
		{"amount given twice, the first blank", `{"token":"t","amount":null,"amount":5,"currency":"USD"}`, "", unproc, "Field given twice: amount"},

		// The contract's rows, in its order.
		{"token missing", `{"amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"token empty", `{"token":"","amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"token null", `{"token":null,"amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"token false (falsy in Python)", `{"token":false,"amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"token 0", `{"token":0,"amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"everything missing", `{}`, "", unproc, "Token is blank"},
		{"token key in other case", `{"Token":"t","amount":100,"currency":"USD"}`, "", unproc, "Token is blank"},
		{"amount missing", `{"token":"t","currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount missing, bearer token", `{"currency":"USD"}`, "b", unproc, "Amount is blank"},
		{"amount empty", `{"token":"t","amount":"","currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount 0", `{"token":"t","amount":0,"currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount \"0\"", `{"token":"t","amount":"0","currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount \"000\"", `{"token":"t","amount":"000","currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount null", `{"token":"t","amount":null,"currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount false", `{"token":"t","amount":false,"currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount 0.0", `{"token":"t","amount":0.0,"currency":"USD"}`, "", unproc, "Amount is blank"},
		{"amount key in other case", `{"token":"t","Amount":5,"currency":"USD"}`, "", unproc, "Amount is blank"},
		{"currency missing", `{"token":"t","amount":100}`, "", unproc, "Currency is blank"},
		{"currency empty", `{"token":"t","amount":100,"currency":""}`, "", unproc, "Currency is blank"},
		{"currency null", `{"token":"t","amount":100,"currency":null}`, "", unproc, "Currency is blank"},
		{"currency lower case", `{"token":"t","amount":100,"currency":"usd"}`, "", unproc, "Invalid currency code"},
		{"currency mixed case", `{"token":"t","amount":100,"currency":"UsD"}`, "", unproc, "Invalid currency code"},
		{"currency two letters", `{"token":"t","amount":100,"currency":"US"}`, "", unproc, "Invalid currency code"},
		{"currency four letters", `{"token":"t","amount":100,"currency":"USDD"}`, "", unproc, "Invalid currency code"},
		{"currency trailing newline", `{"token":"t","amount":100,"currency":"USD\n"}`, "", unproc, "Invalid currency code"},
		{"currency leading space", `{"token":"t","amount":100,"currency":" USD"}`, "", unproc, "Invalid currency code"},
		{"currency trailing NUL", `{"token":"t","amount":100,"currency":"USD\u0000"}`, "", unproc, "Invalid currency code"},
		{"currency fullwidth look-alike", `{"token":"t","amount":100,"currency":"ＵＳＤ"}`, "", unproc, "Invalid currency code"},
		{"currency Cyrillic look-alike", `{"token":"t","amount":100,"currency":"USА"}`, "", unproc, "Invalid currency code"},
		{"currency digits", `{"token":"t","amount":100,"currency":"123"}`, "", unproc, "Invalid currency code"},
		// Not three capital letters either: the contract's text, whatever the
		// JSON type (840 is USD's ISO 4217 numeric code).
		{"currency a number", `{"token":"t","amount":100,"currency":840}`, "", unproc, "Invalid currency code"},
		{"currency a number, amount a float", `{"token":"t","amount":1.5,"currency":840}`, "", unproc, "Invalid currency code"},
		{"currency an array", `{"token":"t","amount":100,"currency":["USD"]}`, "", unproc, "Invalid currency code"},
		{"currency an object", `{"token":"t","amount":100,"currency":{"code":"USD"}}`, "", unproc, "Invalid currency code"},
		{"currency true", `{"token":"t","amount":100,"currency":true}`, "", unproc, "Invalid currency code"},
		{"currency checked before amount format", `{"token":"t","amount":1.5,"currency":"usd"}`, "", unproc, "Invalid currency code"},

		// Amount format, after the currency.
		{"amount float", `{"token":"t","amount":100.5,"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount 100.0", `{"token":"t","amount":100.0,"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount exponent", `{"token":"t","amount":1e3,"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount float string", `{"token":"t","amount":"100.5","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount negative", `{"token":"t","amount":-5,"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount negative string", `{"token":"t","amount":"-5","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount plus sign", `{"token":"t","amount":"+1","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount leading space", `{"token":"t","amount":" 100","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount trailing space", `{"token":"t","amount":"100 ","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount trailing newline", `{"token":"t","amount":"100\n","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount underscore (Python int() took it)", `{"token":"t","amount":"1_000","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount hex", `{"token":"t","amount":"0x10","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount Arabic-Indic digits", `{"token":"t","amount":"١٠٠","currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount true", `{"token":"t","amount":true,"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount array", `{"token":"t","amount":[100],"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount object", `{"token":"t","amount":{"v":100},"currency":"USD"}`, "", unproc, msgAmountInvalid},
		{"amount above max", `{"token":"t","amount":1000000001,"currency":"USD"}`, "", unproc, msgAmountTooLarge},
		{"amount above max as string", `{"token":"t","amount":"1000000001","currency":"USD"}`, "", unproc, msgAmountTooLarge},
		{"amount beyond int64", `{"token":"t","amount":99999999999999999999999,"currency":"USD"}`, "", unproc, msgAmountTooLarge},
		{"amount huge digit string", `{"token":"t","amount":"` + strings.Repeat("9", 5000) + `","currency":"USD"}`, "", unproc, msgAmountTooLarge},

		// Bodies the router refuses (over 8 kB), which reach core-api's own
		// port: e2e's hostile table has smaller ones through the router.
		{"100k nested arrays", `{"token":"t","amount":100,"currency":"USD","x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`, "", unproc, ""},
		{"40k keys, amount missing", `{"token":"t","currency":"USD"` + manyKeys(40_000) + `}`, "", unproc, "Amount is blank"},
		{"amount string of 100k digits", `{"token":"t","amount":"` + strings.Repeat("9", 100_000) + `","currency":"USD"}`, "", unproc, msgAmountTooLarge},

		// Token type, last (where the original would have crashed in jwt.decode).
		{"token a number", `{"token":12,"amount":100,"currency":"USD"}`, "", unproc, "Token must be a string"},
		{"token true", `{"token":true,"amount":100,"currency":"USD"}`, "b", unproc, "Token must be a string"},
		{"token an object", `{"token":{"a":1},"amount":100,"currency":"USD"}`, "", unproc, "Token must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body), tt.bearer)
			var de *httpx.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %+v, error %v; want a *httpx.DecodeError", got, err)
			}
			if de.Status != tt.wantStatus {
				t.Errorf("got status %d, want %d (%q)", de.Status, tt.wantStatus, de.Msg)
			}
			if tt.wantMsg != "" && de.Msg != tt.wantMsg {
				t.Errorf("got message %q, want %q", de.Msg, tt.wantMsg)
			}
			if de.Msg == "" {
				t.Error("got an empty message")
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct{ header, want string }{
		{"Bearer abc.def.ghi", "abc.def.ghi"},
		{"bearer abc", "abc"},
		{"BEARER  abc ", "abc"},
		{"Bearer ", ""},
		{"Bearer", ""},
		{"Basic YWxpY2U6cGFzc3dvcmQ=", ""},
		{"Bearerabc", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := BearerToken(tt.header); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	bodies := map[string][]byte{
		"number": []byte(`{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxLCJ1c2VybmFtZSI6ImFsaWNlIiwiZW5hYmxlZCI6dHJ1ZSwiZXhwIjoxNzAwMDAwMDMwLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dQ","amount":100,"currency":"USD"}`),
		"string": []byte(`{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxLCJ1c2VybmFtZSI6ImFsaWNlIiwiZW5hYmxlZCI6dHJ1ZSwiZXhwIjoxNzAwMDAwMDMwLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dQ","amount":"100","currency":"USD"}`),
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Decode(body, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
