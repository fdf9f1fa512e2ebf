package stackconfig

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/envconfig"
)

func TestLoadErrorsSayWhereTheValueCameFrom(t *testing.T) {
	tests := []struct {
		name            string
		stackEnv, local string
		environ         []string
		want            string
	}{
		{"from stack.local.env", "", "PLATFORM_PORT=eighty\n", nil,
			`PLATFORM_PORT must be a whole number, got "eighty" (PLATFORM_PORT is set in <local>)`},
		{"from stack.env", "REDIS_APPENDFSYNC=sometimes\n", "", nil,
			`REDIS_APPENDFSYNC must be always, everysec or no, got "sometimes" (REDIS_APPENDFSYNC is set in <defaults>)`},
		{"from the environment", "LOG_LEVEL=info\n", "", []string{"LOG_LEVEL=loud"},
			`LOG_LEVEL must be debug, info, warn or error, got "loud" (LOG_LEVEL is set in the environment)`},
		{"two files, one clash", "AUTH_API_PORT=5002\n", "CORE_API_PORT=5002\n", nil,
			"AUTH_API_PORT and CORE_API_PORT are both 5002; give each its own port (AUTH_API_PORT is set in <defaults>; CORE_API_PORT is set in <local>)"},
		{"a built-in default gets no note", "", "", []string{"AUTH_API_PORT=5002"},
			"AUTH_API_PORT and CORE_API_PORT are both 5002; give each its own port (AUTH_API_PORT is set in the environment)"},
		{"two bad values, each placed on its line", "", "CORE_API_PORT=x\n", []string{"SHUTDOWN_GRACE=soon"},
			"CORE_API_PORT must be a whole number, got \"x\" (CORE_API_PORT is set in <local>)\n  " +
				"SHUTDOWN_GRACE must be a duration such as 10s, got \"soon\" (SHUTDOWN_GRACE is set in the environment)"},
		{"set empty in a file: the default, no note", "CORE_API_PORT=\n", "", []string{"AUTH_API_PORT=5002"},
			"AUTH_API_PORT and CORE_API_PORT are both 5002; give each its own port (AUTH_API_PORT is set in the environment)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := checkout(t, tt.stackEnv)
			if tt.local != "" {
				writeFile(t, l.LocalFile(l.Checkout), tt.local)
			}
			want := strings.NewReplacer("<defaults>", l.DefaultsFile(), "<local>", l.LocalFile(l.Checkout)).Replace(tt.want)
			_, err := Load(l, l.Checkout, tt.environ)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant an error containing %q", err, want)
			}
		})
	}
}

func TestLoadWarnsAboutKeysNothingReads(t *testing.T) {
	l := checkout(t, "PLATFORM_PORT=8080\nREDIS_APPENDSYNC=no\n")
	writeFile(t, l.LocalFile(l.Checkout),
		"HTTP_PORT=9000\nFROBNICATE=1\nSTATUS_TTL=1h\nVISIBILITY_TIMEOUT=10s\nGOMAXPROCS=2\nJWT_SECRET=s\nXDG_STATE_HOME=/x\nSTACK_SHARE_DIR=/s\nCORE_API_SOCKET=/c.sock\n")
	environ := []string{"UNRELATED_BY_DESIGN=1", "HOME=/h"}

	cfg, err := Load(l, l.Checkout, environ)
	if err != nil {
		t.Fatal(err)
	}
	local, defaults := l.LocalFile(l.Checkout), l.DefaultsFile()
	want := []string{
		defaults + ": REDIS_APPENDSYNC is not a setting of the stack or its services (did you mean REDIS_APPENDFSYNC?); every process gets it as it is",
		local + ": FROBNICATE is not a setting of the stack or its services; every process gets it as it is",
		local + ": HTTP_PORT has no effect: process-compose.yaml sets it for each service (set AUTH_API_PORT, CORE_API_PORT or PSP_CONNECTOR_PORT)",
		local + ": STACK_SHARE_DIR has no effect there: the launcher reads it from the environment only, before it reads any file",
		local + ": CORE_API_SOCKET has no effect there: the launcher sets it",
	}
	slices.Sort(want)
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

// TestLoadWarnsAboutAFileKeyTheEnvironmentAlsoSets: the environment wins
// over both files, but a key a file sets in vain still gets its warning
// when the environment has it too. PATH always is in the environment, so a
// PATH line in stack.local.env (say, to put a newer HAProxy first) was
// ignored without the warning README.md promises for it.
func TestLoadWarnsAboutAFileKeyTheEnvironmentAlsoSets(t *testing.T) {
	l := checkout(t, "")
	writeFile(t, l.LocalFile(l.Checkout), "PATH=/opt/haproxy/bin:/usr/bin\nHTTP_PORT=9000\nFROBNICATE=1\n")
	environ := []string{"HOME=/h", "PATH=/usr/bin:/bin", "HTTP_PORT=1", "FROBNICATE=2"}

	cfg, err := Load(l, l.Checkout, environ)
	if err != nil {
		t.Fatal(err)
	}
	local := l.LocalFile(l.Checkout)
	want := []string{
		local + ": FROBNICATE is not a setting of the stack or its services; every process gets it as it is",
		local + ": HTTP_PORT has no effect: process-compose.yaml sets it for each service (set AUTH_API_PORT, CORE_API_PORT or PSP_CONNECTOR_PORT)",
		local + ": PATH has no effect there: the launcher builds it from the environment's PATH",
	}
	slices.Sort(want)
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
	if got := cfg.Values["PATH"]; got != "/usr/bin:/bin" {
		t.Errorf("PATH = %q, want the environment's", got)
	}
}

func TestCommittedStackEnvHasNoUnreadKey(t *testing.T) {
	committed, err := ReadEnvFile(filepath.Join("..", "..", DefaultsFileName), false)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for k := range committed {
		sources[k] = DefaultsFileName
	}
	if w := unreadKeys(sources); len(w) > 0 {
		t.Errorf("got warnings for the committed stack.env:\n%s", strings.Join(w, "\n"))
	}
}

// TestServiceSettingsMatchTheServices keeps serviceSettings (and the
// per-process ones) in step with the `env` tags of the services' config
// structs, read from their source, and of the shared ones in envconfig:
// a new service setting must be listed, a removed one dropped.
func TestServiceSettingsMatchTheServices(t *testing.T) {
	read := map[string]bool{}
	for _, reads := range settingsReadByService(t) {
		for key := range reads {
			read[key] = true
		}
	}
	known := knownSettings()
	for key := range read {
		if _, perProcess := perProcessSettings[key]; !perProcess && !slices.Contains(known, key) {
			t.Errorf("a service reads %s, which serviceSettings does not list", key)
		}
	}
	for _, key := range serviceSettings {
		if !read[key] {
			t.Errorf("serviceSettings lists %s, which no service reads", key)
		}
	}
	for key := range perProcessSettings {
		if !read[key] {
			t.Errorf("perProcessSettings lists %s, which no service reads", key)
		}
	}
}

// TestPerProcessSettingsAreSetForEachService: the launcher warns that a
// perProcessSettings key in a file "has no effect: process-compose.yaml sets
// it for each service", so process-compose.yaml must set it, empty if need
// be, in the environment of every service that reads it. One it left out
// would reach that service from the file after all (psp-connector once got a
// file's HTTP_SOCKET and listened there).
func TestPerProcessSettingsAreSetForEachService(t *testing.T) {
	set := composeEnvironments(t, filepath.Join("..", "..", ComposeFileName))
	for service, reads := range settingsReadByService(t) {
		env, ok := set[service]
		if !ok {
			t.Errorf("process-compose.yaml has no process %s", service)
			continue
		}
		for key := range perProcessSettings {
			if reads[key] && !env[key] {
				t.Errorf("process-compose.yaml: %s reads %s, and its environment does not set it: a file's value would reach it", service, key)
			}
		}
	}
}

// settingsReadByService returns, for each service under services/, the
// environment variables its config.go reads: its own struct tags, and those
// of the envconfig structs it embeds.
func settingsReadByService(t *testing.T) map[string]map[string]bool {
	t.Helper()
	shared := map[string]reflect.Type{
		"Server": reflect.TypeOf(envconfig.Server{}),
		"Queue":  reflect.TypeOf(envconfig.Queue{}),
		"Secret": reflect.TypeOf(envconfig.Secret{}),
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "services", "*", "config.go"))
	if err != nil || len(files) != 3 {
		t.Fatalf("got %v, %v; want the three services' config.go", files, err)
	}
	services := map[string]map[string]bool{}
	for _, f := range files {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		read := map[string]bool{}
		ast.Inspect(file, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			if sel, ok := field.Type.(*ast.SelectorExpr); ok && len(field.Names) == 0 {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "envconfig" {
					typ, ok := shared[sel.Sel.Name]
					if !ok {
						t.Fatalf("%s embeds envconfig.%s, which this test does not know", f, sel.Sel.Name)
					}
					for i := range typ.NumField() {
						if key := typ.Field(i).Tag.Get("env"); key != "" && key != "-" {
							read[key] = true
						}
					}
				}
			}
			if field.Tag != nil {
				tag, err := strconv.Unquote(field.Tag.Value)
				if err != nil {
					t.Fatalf("%s: tag %s: %v", f, field.Tag.Value, err)
				}
				if key := reflect.StructTag(tag).Get("env"); key != "" && key != "-" {
					read[key] = true
				}
			}
			return true
		})
		services[filepath.Base(filepath.Dir(f))] = read
	}
	return services
}

// composeEnvironments returns the keys each process of a process-compose.yaml
// sets in its environment list ("- \"KEY=value\""). It reads the file's
// layout, not YAML in general: processes at two spaces' indent under
// "processes:", their fields at four.
func composeEnvironments(t *testing.T, path string) map[string]map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]map[string]bool{}
	inProcesses, inEnvironment := false, false
	process := ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			inProcesses, process = trimmed == "processes:", ""
		case !inProcesses:
		case indent == 2 && strings.HasSuffix(trimmed, ":"):
			process = strings.TrimSuffix(trimmed, ":")
			envs[process] = map[string]bool{}
		case indent == 4:
			inEnvironment = process != "" && trimmed == "environment:"
		case inEnvironment && strings.HasPrefix(trimmed, "- "):
			kv := strings.Trim(strings.TrimPrefix(trimmed, "- "), `"'`)
			if key, _, ok := strings.Cut(kv, "="); ok {
				envs[process][key] = true
			}
		}
	}
	if len(envs) == 0 {
		t.Fatalf("%s: no process found under processes:", path)
	}
	return envs
}

// TestIgnoredInFilesMatchesWhatTheLauncherSets keeps ignoredInFiles in step
// with the variables the launcher sets for every process: each key up.go
// puts in launcherSet (what it passes to Config.Environ), and each service's socket
// variable, is either a setting (JWT_SECRET, read by the services) or listed
// as one a file cannot set; and each listed key is still set by the launcher.
func TestIgnoredInFilesMatchesWhatTheLauncherSets(t *testing.T) {
	set := map[string]bool{}
	for _, s := range socketServices {
		set[s.envVar] = true
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "cmd", "stack", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("got %v, %v; want the launcher's sources", files, err)
	}
	literals := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		// up.go builds what it sets in launcherSet: a map literal, and
		// launcherSet["KEY"] = ... for what it sets only at times.
		isSet := func(e ast.Expr) bool { id, ok := e.(*ast.Ident); return ok && id.Name == "launcherSet" }
		addKey := func(e ast.Expr) {
			if key, ok := e.(*ast.BasicLit); ok && key.Kind == token.STRING {
				k, _ := strconv.Unquote(key.Value)
				set[k] = true
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
				return true
			}
			if isSet(as.Lhs[0]) {
				if lit, ok := as.Rhs[0].(*ast.CompositeLit); ok {
					literals++
					for _, elt := range lit.Elts {
						if kv, ok := elt.(*ast.KeyValueExpr); ok {
							addKey(kv.Key)
						}
					}
				}
			}
			if ix, ok := as.Lhs[0].(*ast.IndexExpr); ok && isSet(ix.X) {
				addKey(ix.Index)
			}
			return true
		})
	}
	if literals == 0 {
		t.Fatal("found no launcherSet := map[string]string{...} in cmd/stack: the test no longer sees what the launcher sets")
	}
	known := knownSettings()
	for key := range set {
		if _, ignored := ignoredInFiles[key]; !ignored && !slices.Contains(known, key) {
			t.Errorf("the launcher sets %s for every process, which ignoredInFiles does not list: a file setting it would get no word", key)
		}
	}
	for key := range ignoredInFiles {
		if !environmentOnly[key] && !set[key] {
			t.Errorf("ignoredInFiles lists %s, which the launcher no longer sets", key)
		}
	}
}

func TestWhereSetGivesAServicesHTTPPortItsStackVariable(t *testing.T) {
	l := checkout(t, "CORE_API_PORT=5002\n")
	cfg, err := Load(l, l.Checkout, []string{"AUTH_API_PORT=27001"})
	if err != nil {
		t.Fatal(err)
	}
	bind := "core-api: HTTP_HOST, HTTP_PORT: listen on 127.0.0.1:5002: bind: address already in use"
	tests := []struct {
		process, log string
		want         []string
	}{
		{"core-api", bind, []string{"core-api's HTTP_PORT is CORE_API_PORT=5002, set in " + l.DefaultsFile()}},
		{"auth-api", strings.ReplaceAll(bind, "5002", "27001"), []string{"auth-api's HTTP_PORT is AUTH_API_PORT=27001, set in the environment"}},
		{"psp-connector", bind, []string{"psp-connector's HTTP_PORT is PSP_CONNECTOR_PORT=5003, its default"}},
		{"redis", bind, nil},
	}
	for _, tt := range tests {
		if got := cfg.WhereSet(tt.process, tt.log); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.process, got, tt.want)
		}
	}
}

func TestNearestSuggestsOnlyCloseNames(t *testing.T) {
	names := []string{"REDIS_APPENDFSYNC", "PLATFORM_PORT", "LOG_LEVEL"}
	tests := []struct{ key, want string }{
		{"REDIS_APPENDSYNC", "REDIS_APPENDFSYNC"},
		{"PLATFORM_PROT", "PLATFORM_PORT"},
		{"LOGLEVEL", "LOG_LEVEL"},
		{"log_level", "LOG_LEVEL"},
		{"platform_prot", "PLATFORM_PORT"},
		{"FROBNICATE", ""},
	}
	for _, tt := range tests {
		if got := nearest(tt.key, names); got != tt.want {
			t.Errorf("nearest(%q): got %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestWhereSetPlacesTheSettingsALogNames(t *testing.T) {
	l := checkout(t, "LOG_LEVEL=info\n")
	writeFile(t, l.LocalFile(l.Checkout), "VISIBILITY_TIMEOUT=half a minute\n")
	cfg, err := Load(l, l.Checkout, []string{"STATUS_TTL=1h"})
	if err != nil {
		t.Fatal(err)
	}
	log := `psp-connector: VISIBILITY_TIMEOUT must be a duration such as 10s, got "half a minute"
psp-connector: STATUS_TTL and VISIBILITY_TIMEOUT again; MAX_DELIVERIES (a default); SOME_OTHER_WORD; LOG_LEVEL`
	want := []string{
		"VISIBILITY_TIMEOUT is set in " + l.LocalFile(l.Checkout),
		"STATUS_TTL is set in the environment",
		"LOG_LEVEL is set in " + l.DefaultsFile(),
	}
	if got := cfg.WhereSet("psp-connector", log); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
