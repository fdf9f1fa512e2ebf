package gopin

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is where go.mod lives, two levels above this package.
var repoRoot = filepath.Join("..", "..")

func TestGoModGoLineAtMostMaxGo(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatalf("open go.mod: %v", err)
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "go" {
			found = true
			if !atMost(t, fields[1], MaxGo) {
				t.Errorf("go.mod: go line is %s, want at most %s (nixpkgs builds with GOTOOLCHAIN=local)", fields[1], MaxGo)
			}
		}
	}
	if !found {
		t.Fatal("go.mod has no go line")
	}
}

func TestVendoredModulesGoAtMostMaxGo(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, "vendor", "modules.txt"))
	if os.IsNotExist(err) {
		if os.Getenv("CI") == "true" {
			t.Fatal("vendor/modules.txt is missing; run `go mod vendor` (the Nix build uses vendorHash = null)")
		}
		t.Skip("vendor/modules.txt is missing; run `go mod vendor`")
	}
	if err != nil {
		t.Fatalf("open vendor/modules.txt: %v", err)
	}
	defer f.Close()
	var module string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			module = strings.Fields(line)[1]
			continue
		}
		if v, ok := strings.CutPrefix(line, "## explicit; go "); ok && !atMost(t, v, MaxGo) {
			t.Errorf("vendor/modules.txt: %s requires go %s, want at most %s; pin an older version", module, v, MaxGo)
		}
	}
}

func TestAtMost(t *testing.T) {
	tests := []struct {
		version, max string
		want         bool
	}{
		{"1.24", "1.24", true},
		{"1.24.0", "1.24", true},
		{"1.24.9", "1.24", true},
		{"1.21", "1.24", true},
		{"1.25", "1.24", false},
		{"1.25.0", "1.24", false},
		{"1.26rc1", "1.24", false},
		{"2.0", "1.24", false},
		{"1.9", "1.24", true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			if got := atMost(t, tt.version, tt.max); got != tt.want {
				t.Errorf("atMost(%q, %q) = %v, want %v", tt.version, tt.max, got, tt.want)
			}
		})
	}
}

// atMost reports whether the language version (major.minor, patch ignored) of
// v is at most max.
func atMost(t *testing.T, v, max string) bool {
	t.Helper()
	vMajor, vMinor := majorMinor(t, v)
	mMajor, mMinor := majorMinor(t, max)
	return vMajor < mMajor || (vMajor == mMajor && vMinor <= mMinor)
}

func majorMinor(t *testing.T, v string) (int, int) {
	t.Helper()
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("go version %q is not major.minor", v)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		t.Fatalf("go version %q: %v", v, err)
	}
	// Drop any pre-release suffix such as "26rc1".
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err := strconv.Atoi(minorDigits)
	if err != nil {
		t.Fatalf("go version %q: %v", v, err)
	}
	return major, minor
}
