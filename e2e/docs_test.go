package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/stacktest"
)

// markdownLink matches an inline Markdown link, [text](target), and captures
// the target.
var markdownLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)

// TestDocsLinksLeadToTrackedFiles: every relative link in the checkout's
// Markdown files (README, BENCHMARKS, RELIABILITY, the services' READMEs, the
// benchmark results' notes) names a file or directory of the checkout, and
// one that git tracks. A link into a git-ignored directory (bench/ab.sh
// writes its reports to bench/results/ab/) works only on the machine that
// wrote it, and is dead in every clone. It skips outside a git checkout:
// the Nix build sandbox holds the tests' sources, not the docs.
func TestDocsLinksLeadToTrackedFiles(t *testing.T) {
	root := stacktest.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skipf("not a git checkout (%v): the docs and their links are checked in one", err)
	}
	tracked := trackedFiles(t, root)
	docs := markdownFiles(t, root, tracked)
	if len(docs) == 0 {
		t.Fatalf("no Markdown file found under %s", root)
	}
	links := 0
	for _, doc := range docs {
		for _, l := range relativeLinks(t, filepath.Join(root, doc)) {
			links++
			target := filepath.Clean(filepath.Join(filepath.Dir(doc), l.target))
			where := fmt.Sprintf("%s:%d: link to %s", doc, l.line, l.target)
			if target == ".." || strings.HasPrefix(target, ".."+string(filepath.Separator)) {
				t.Errorf("%s: outside the checkout", where)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !tracked.has(target) {
				t.Errorf("%s: not tracked by git (git-ignored, or not added): dead in every clone", where)
			}
		}
	}
	t.Logf("%d relative links in %d Markdown files checked", links, len(docs))
}

// trackedSet is what `git ls-files` lists: files, and the directories that
// hold them (the checkout's root, ".", always).
type trackedSet map[string]bool

func (s trackedSet) has(path string) bool { return path == "." || s[filepath.ToSlash(path)] }

// trackedFiles returns the checkout's tracked files and their directories.
func trackedFiles(t *testing.T, root string) trackedSet {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v", root, err)
	}
	set := trackedSet{}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		for p := f; p != "." && p != ""; p = filepath.ToSlash(filepath.Dir(p)) {
			set[p] = true
		}
	}
	return set
}

// markdownFiles returns the checkout's tracked Markdown files, relative to
// its root, vendor/ left out.
func markdownFiles(t *testing.T, root string, tracked trackedSet) []string {
	t.Helper()
	var docs []string
	for f := range tracked {
		if strings.HasSuffix(f, ".md") && !strings.HasPrefix(f, "vendor/") {
			docs = append(docs, filepath.FromSlash(f))
		}
	}
	slices.Sort(docs)
	return docs
}

type docLink struct {
	line   int
	target string // without its #fragment
}

// relativeLinks returns the links of one Markdown file that lead into the
// checkout: not a URL, not an anchor in the same file. Code spans and code
// blocks are skipped, since what looks like a link there is code.
func relativeLinks(t *testing.T, path string) []docLink {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var links []docLink
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatchIndex(line, -1) {
			if strings.Count(line[:m[0]], "`")%2 == 1 {
				continue // inside a code span
			}
			target := line[m[2]:m[3]]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			links = append(links, docLink{line: n, target: target})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return links
}
