package stackconfig

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// serviceSettings are the services' own variables that reach them from
// stack.env and stack.local.env unchanged (their READMEs describe each).
// TestServiceSettingsMatchTheServices keeps the list in step with the
// services' config structs.
var serviceSettings = []string{
	"USERS_FILE", "BCRYPT_CONCURRENCY", "BCRYPT_MAX_WAITING", // auth-api
	"DIRECT_LOGIN_FAILURE_LIMIT", "DIRECT_LOGIN_FAILURE_WINDOW",
	"STATUS_TTL",                                            // core-api, psp-connector
	"IDEMPOTENCY_TTL",                                       // core-api
	"CONSUMER_NAME", "VISIBILITY_TIMEOUT", "CLAIM_INTERVAL", // psp-connector
	"MAX_DELIVERIES", "CHARGE_CONCURRENCY", "BATCH_SIZE",
}

// perProcessSettings are services' variables that process-compose.yaml sets
// for each process itself, so a value in a file never reaches a service:
// each with what to set instead.
var perProcessSettings = map[string]string{
	"HTTP_HOST":     "the services listen on 127.0.0.1 only; PLATFORM_HOST moves the router",
	"HTTP_PORT":     "set AUTH_API_PORT, CORE_API_PORT or PSP_CONNECTOR_PORT",
	"HTTP_SOCKET":   "the services' sockets are in $STACK_STATE_DIR/run",
	"CHARGE_LOG":    "psp-connector reads its own log, $STACK_STATE_DIR/logs/psp-connector.log",
	"CHARGE_LEDGER": "psp-connector keeps its ledger in $STACK_STATE_DIR/ledger/psp-connector.jsonl",
}

// ignoredInFiles are variables a file cannot set: the launcher reads
// STACK_SHARE_DIR (where the files are) and STACK_TRUSTED_CHECKOUT from the
// environment only (environmentOnly), and sets the others itself for every
// process (Config.Environ and up).
var ignoredInFiles = map[string]string{
	"STACK_SHARE_DIR":            "the launcher reads it from the environment only, before it reads any file",
	"STACK_TRUSTED_CHECKOUT":     "the launcher reads it from the environment only: a checkout's own file cannot vouch for the checkout",
	"AUTH_API_SOCKET":            "the launcher sets it",
	"CORE_API_SOCKET":            "the launcher sets it",
	"STACK_CONFIG_DIR":           "the launcher sets it",
	"STACK_LAUNCHER":             "the launcher sets it",
	"STACK_API_SOCKET":           "the launcher sets it",
	"STACK_SERVICE_STOP_TIMEOUT": "the launcher sets it from SHUTDOWN_GRACE",
	"STACK_HAPROXY_STOP_SIGNAL":  "the launcher sets it",
	"PATH":                       "the launcher builds it from the environment's PATH",
	"PC_API_TOKEN":               "the launcher clears it: process-compose's API is on a unix socket in the state dir",
	"PC_API_TOKEN_PATH":          "the launcher clears it: process-compose's API is on a unix socket in the state dir",
	"PC_DISABLED_PROCESSES":      "the launcher clears it: every process of the stack runs",
}

// environmentOnly are the entries of ignoredInFiles that the launcher reads
// from the environment, and sets for no process.
var environmentOnly = map[string]bool{"STACK_SHARE_DIR": true, "STACK_TRUSTED_CHECKOUT": true}

// otherReadSettings are read by the launcher, by process-compose or by every
// process's Go runtime, though not in Config.
var otherReadSettings = []string{"XDG_STATE_HOME", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK", "PROC_COMP_CONFIG", "NO_COLOR"}

// knownSettings is every key a file can usefully set.
func knownSettings() []string {
	var keys []string
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		if key := typ.Field(i).Tag.Get("env"); key != "" && key != "-" {
			keys = append(keys, key)
		}
	}
	return slices.Concat(keys, serviceSettings, otherReadSettings)
}

// unreadKeys warns about each key that came from a file and that nothing
// reads: most likely a typo, which would otherwise leave the setting at its
// default without a word. Keys from the environment are not checked (it
// holds much else).
func unreadKeys(sources map[string]string) []string {
	known := knownSettings()
	var warnings []string
	for key, src := range sources {
		if src == FromEnvironment || slices.Contains(known, key) {
			continue
		}
		if instead, ok := perProcessSettings[key]; ok {
			warnings = append(warnings, fmt.Sprintf("%s: %s has no effect: process-compose.yaml sets it for each service (%s)", src, key, instead))
			continue
		}
		if why, ok := ignoredInFiles[key]; ok {
			warnings = append(warnings, fmt.Sprintf("%s: %s has no effect there: %s", src, key, why))
			continue
		}
		hint := ""
		if near := nearest(key, known); near != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", near)
		}
		warnings = append(warnings, fmt.Sprintf("%s: %s is not a setting of the stack or its services%s; every process gets it as it is", src, key, hint))
	}
	sort.Strings(warnings)
	return warnings
}

// nearest is the name in names closest to key by edit distance, ignoring
// case, if it is at most 2 edits away (REDIS_APPENDSYNC → REDIS_APPENDFSYNC,
// platform_port → PLATFORM_PORT), else "".
func nearest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToUpper(key), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
