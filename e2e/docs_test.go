package e2e

import (
	"fmt"
	"iter"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

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
	root, tracked, docs := docsCheckout(t)
	links := 0
	for _, doc := range docs {
		for _, l := range docLinks(t, filepath.Join(root, doc)) {
			if l.target == "" {
				continue // an anchor in the same file: TestDocsAnchorsLeadToHeadings
			}
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

// docsCheckout returns the checkout's root, its tracked files and its tracked
// Markdown files, for the docs tests. It skips outside a git checkout (the
// Nix build sandbox holds the tests' sources, not the docs).
func docsCheckout(t *testing.T) (root string, tracked trackedSet, docs []string) {
	t.Helper()
	root = stacktest.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skipf("not a git checkout (%v): the docs and their links are checked in one", err)
	}
	tracked = trackedFiles(t, root)
	docs = markdownFiles(t, root, tracked)
	if len(docs) == 0 {
		t.Fatalf("no Markdown file found under %s", root)
	}
	return root, tracked, docs
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
	line     int
	target   string // without its #fragment; "" for an anchor in the same file
	fragment string // after the "#", "" when there is none
}

// docLinks returns the links of one Markdown file that stay in the checkout:
// not a URL. Code spans and code blocks are skipped, since what looks like a
// link there is code.
func docLinks(t *testing.T, path string) []docLink {
	t.Helper()
	var links []docLink
	for n, line := range proseLines(t, path) {
		for _, m := range markdownLink.FindAllStringSubmatchIndex(line, -1) {
			if strings.Count(line[:m[0]], "`")%2 == 1 {
				continue // inside a code span
			}
			target := line[m[2]:m[3]]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, fragment, _ := strings.Cut(target, "#")
			links = append(links, docLink{line: n, target: target, fragment: fragment})
		}
	}
	return links
}

// proseLines returns the lines of a Markdown file outside its code blocks
// (fenced by "```"), by line number from 1, in order.
func proseLines(t *testing.T, path string) iter.Seq2[int, string] {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return func(yield func(int, string) bool) {
		inBlock := false
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inBlock = !inBlock
				continue
			}
			if !inBlock && !yield(i+1, line) {
				return
			}
		}
	}
}

// TestDocsAnchorsLeadToHeadings: every link to a #fragment of a Markdown file
// of the checkout (the contents lists of BENCHMARKS.md and RELIABILITY.md, the
// README's cross-references) names a heading of that file, as GitHub derives
// its anchor. A heading renamed without its links leaves them pointing at the
// top of the file, which no other test notices.
func TestDocsAnchorsLeadToHeadings(t *testing.T) {
	root, _, docs := docsCheckout(t)
	anchors := map[string]map[string]bool{} // Markdown file -> its headings' anchors
	anchorsOf := func(doc string) map[string]bool {
		if a, ok := anchors[doc]; ok {
			return a
		}
		anchors[doc] = headingAnchors(t, filepath.Join(root, doc))
		return anchors[doc]
	}
	checked := 0
	for _, doc := range docs {
		for _, l := range docLinks(t, filepath.Join(root, doc)) {
			if l.fragment == "" {
				continue
			}
			target := doc
			if l.target != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(doc), l.target))
			}
			if !strings.HasSuffix(target, ".md") {
				continue // a fragment of another kind of file: nothing to check it against
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				continue // TestDocsLinksLeadToTrackedFiles reports it
			}
			checked++
			if !anchorsOf(target)[l.fragment] {
				t.Errorf("%s:%d: link to #%s: no heading of %s has that anchor", doc, l.line, l.fragment, target)
			}
		}
	}
	t.Logf("%d links to headings in %d Markdown files checked", checked, len(docs))
}

// headingAnchors returns the anchors GitHub gives the headings of one Markdown
// file: lower case, every character but letters, digits, spaces, "-" and "_"
// removed, spaces made "-", and "-1", "-2", ... after a repeated one. Headings
// in code blocks are not headings.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(t, path) {
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !strings.HasPrefix(line, "#") || !ok {
			continue
		}
		base := headingAnchor(text)
		anchor := base
		if n := seen[base]; n > 0 {
			anchor = fmt.Sprintf("%s-%d", base, n)
		}
		seen[base]++
		anchors[anchor] = true
	}
	return anchors
}

// headingAnchor is GitHub's anchor for a heading's text.
func headingAnchor(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestHeadingAnchor(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Run 36 (2026-12-05 22:41 UTC, at 391655a)", "run-36-2026-12-05-2241-utc-at-391655a"},
		{`The calibration with wrk: what "45,000/s here" is on today's VM`, "the-calibration-with-wrk-what-45000s-here-is-on-todays-vm"},
		{"Runs 25–28 (2026-12-05 14:26–14:36 UTC)", "runs-2528-2026-12-05-14261436-utc"},
		{"1. Transactions/s: 227 µs", "1-transactionss-227-µs"},
		{"`stack up` and `STACK_STATE_DIR`", "stack-up-and-stack_state_dir"},
	}
	for _, tt := range tests {
		if got := headingAnchor(tt.heading); got != tt.want {
			t.Errorf("headingAnchor(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestHeadingAnchorsNumberRepeatsAndSkipCodeBlocks(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "doc.md")
	text := "# Runs\n\n## Run 1\n\n```sh\n# not a heading\n```\n\n## Run 1\n\n### Run 1\n#nospace\n"
	if err := os.WriteFile(doc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(headingAnchors(t, doc)))
	want := []string{"run-1", "run-1-1", "run-1-2", "runs"}
	if !slices.Equal(got, want) {
		t.Errorf("headingAnchors = %q, want %q", got, want)
	}
}
