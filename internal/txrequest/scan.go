package txrequest

import (
	"bytes"
	"encoding/json"
	"iter"
	"strings"
)

// This file walks the top level of a JSON object that json.Valid already
// accepted, without building a map: values are sub-slices of the body, so
// decoding a transaction copies nothing it does not keep. Keys match exactly
// (after unescaping); Decode refuses a field it reads given twice.

// firstByte returns the first byte of b that is not JSON white space, or 0.
func firstByte(b []byte) byte {
	i := skipSpace(b, 0)
	if i == len(b) {
		return 0
	}
	return b[i]
}

// objectFields yields the raw (quoted) key and raw value of each member of
// obj, a valid JSON object.
func objectFields(obj []byte) iter.Seq2[json.RawMessage, json.RawMessage] {
	return func(yield func(json.RawMessage, json.RawMessage) bool) {
		i := skipSpace(obj, 0) + 1 // past '{'
		for {
			i = skipSpace(obj, i)
			if obj[i] == '}' {
				return
			}
			if obj[i] == ',' {
				i = skipSpace(obj, i+1)
			}
			keyEnd := skipString(obj, i)
			key := obj[i:keyEnd]
			i = skipSpace(obj, keyEnd)
			i = skipSpace(obj, i+1) // past ':'
			valEnd := skipValue(obj, i)
			if !yield(key, obj[i:valEnd]) {
				return
			}
			i = valEnd
		}
	}
}

// skipSpace returns the index of the first non-white-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at i.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// keyIs reports whether the raw JSON string key means name; only keys with
// escapes are decoded.
func keyIs(key json.RawMessage, name string) bool {
	if len(key) == len(name)+2 && string(key[1:len(key)-1]) == name {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	s, ok := jsonString(key)
	return ok && s == name
}
