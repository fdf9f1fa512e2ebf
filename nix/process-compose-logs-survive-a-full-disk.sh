#!/usr/bin/env bash
# process-compose-logs-survive-a-full-disk.sh SRC: edits process-compose's
# source tree SRC (the repository's root, as fetched), before it is built, so
# that a process's log goes on after a write to it failed.
# process-compose-logs-survive-a-full-disk.sh --check BINARY: fails unless
# BINARY holds the edit's notice text.
#
# Why: process-compose writes each process's log through a bufio.Writer
# (src/pclog/logger_facade.go, runCollector). A bufio.Writer keeps its first
# write error and fails every write after it, so after one `no space left on
# device` that process's log got no line again, even once the space was back,
# until the stack was started again: the connector's charge lines, HAProxy's
# access log, every service's errors (RELIABILITY.md, D126). With the edit,
# after a failed flush the buffer starts again, and the next write that works
# begins with a line of its own:
#   process-compose: lines of this log lost here: N (write …: no space left on device)
# (a newline first, so that a line cut short by the full disk is ended, not
# joined to the next). It applies where a line is flushed as it is logged
# (`flush_each_line: true`), which every process of the stack sets.
#
# Used by the flake (nix/packages.nix, postPatch; nix/checks.nix, --check) and
# by tools/build-process-compose (the launcher, the tests, CI, the benchmark),
# next to process-compose-without-swagger-ui.sh. The file is the same in every
# release from v1.64.1 to v1.122.0; when an anchor line is missing or doubled,
# this fails and names it, so that a newer process-compose is looked at
# instead of built half-edited.
set -euo pipefail

notice='lines of this log lost here'

if [ "${1:-}" = --check ]; then
	bin=${2:?usage: process-compose-logs-survive-a-full-disk.sh --check BINARY}
	[ -f "$bin" ] || { echo "process-compose-logs-survive-a-full-disk.sh: $bin: no such file" >&2; exit 1; }
	if ! grep -qaF -e "$notice" "$bin"; then
		echo "process-compose-logs-survive-a-full-disk.sh: $bin does not hold the edit (no '$notice' in it): its logs stop for good at the first failed write" >&2
		exit 1
	fi
	exit 0
fi

src=${1:?usage: process-compose-logs-survive-a-full-disk.sh SRC (the process-compose source tree)}
file=$src/src/pclog/logger_facade.go
[ -f "$file" ] || { echo "process-compose-logs-survive-a-full-disk.sh: $file: no such file" >&2; exit 1; }

collector='func (l *PCLog) runCollector() {'
when='		if l.flushEachLine {'
flush='			l.writer.Flush()'
for line in "$collector" "$when" "$flush"; do
	n=$(grep -cxF -e "$line" "$file" || true)
	if [ "$n" != 1 ]; then
		echo "process-compose-logs-survive-a-full-disk.sh: $file has the line '${line#"${line%%[!	]*}"}' $n times, not once: this process-compose differs from the versions checked (v1.64.1 to v1.122.0); update the script" >&2
		exit 1
	fi
done

awk -v collector="$collector" -v when="$when" -v flush="$flush" -v notice="$notice" '
$0 == collector {
	print
	print "\tlost := 0 // lines not written since the last write that worked (acme-platform: nix/process-compose-logs-survive-a-full-disk.sh)"
	edits++
	next
}
$0 == flush && prev == when {
	print "\t\t\t// A bufio.Writer keeps its first error and fails every write after it:"
	print "\t\t\t// start it again, and say in the log, once a write works, what was lost."
	print "\t\t\tif err := l.writer.Flush(); err != nil {"
	print "\t\t\t\tlost++"
	print "\t\t\t\tl.writer.Reset(l.file)"
	print "\t\t\t\t_, _ = l.writer.WriteString(\"\\n\")"
	print "\t\t\t\tl.logger.Error().Msgf(\"process-compose: " notice ": %d (%v)\", lost, err)"
	print "\t\t\t} else {"
	print "\t\t\t\tlost = 0"
	print "\t\t\t}"
	edits++
	prev = $0
	next
}
{ print; prev = $0 }
END { if (edits != 2) exit 3 }
' "$file" >"$file.tmp" || {
	rm -f "$file.tmp"
	echo "process-compose-logs-survive-a-full-disk.sh: in $file the flush is not the one under '${when#		}' in runCollector: update the script" >&2
	exit 1
}
mv "$file.tmp" "$file"
