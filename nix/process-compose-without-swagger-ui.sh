#!/usr/bin/env bash
# process-compose-without-swagger-ui.sh SRC: removes the Swagger UI route of
# process-compose's API from the process-compose source tree SRC (the
# repository's root, as fetched), before it is built.
# process-compose-without-swagger-ui.sh --check BINARY: fails unless the Go
# build info of BINARY lists the modules linked into it (gin among them) and
# github.com/swaggo/files is not one of them. Needs go.
#
# Why: src/api/routes.go imports github.com/swaggo/files (v1), whose package
# init copies the whole Swagger UI, about 8.5 MB, into an in-memory file
# system at start. That is 19.5 MB of process-compose's RSS, idle, half of it
# (BENCHMARKS.md, "process-compose's Swagger UI"). The stack's API is on a
# unix socket in its 0700 state dir: no browser reaches the UI there, and the
# launcher uses none of it. The rest of the API is left as it is.
#
# Used by the flake (nix/packages.nix, postPatch; nix/checks.nix, --check) and by
# tools/build-process-compose (the launcher, the tests, CI, the benchmark). The three lines have been the same in every release from
# v1.64.1 to v1.122.0; when one is missing, this fails and names it, so that
# a newer process-compose is looked at instead of built half-edited.
set -euo pipefail

if [ "${1:-}" = --check ]; then
	bin=${2:?usage: process-compose-without-swagger-ui.sh --check BINARY}
	linked=$(go version -m "$bin")
	if ! grep -qF "github.com/gin-gonic/gin" <<<"$linked"; then
		echo "process-compose-without-swagger-ui.sh: no module list in the build info of $bin:" >&2
		echo "$linked" >&2
		exit 1
	fi
	if grep -F "github.com/swaggo/files" <<<"$linked" >&2; then
		echo "process-compose-without-swagger-ui.sh: github.com/swaggo/files is still linked into $bin" >&2
		exit 1
	fi
	exit 0
fi

src=${1:?usage: process-compose-without-swagger-ui.sh SRC (the process-compose source tree)}
routes=$src/src/api/routes.go
[ -f "$routes" ] || { echo "process-compose-without-swagger-ui.sh: $routes: no such file" >&2; exit 1; }

lines=(
	'	swaggerFiles "github.com/swaggo/files"'
	'	ginSwagger "github.com/swaggo/gin-swagger"'
	'	r.GET("/swagger/*any", ginSwagger.WrapHandler(swaggerFiles.Handler))'
)
args=()
for line in "${lines[@]}"; do
	n=$(grep -cxF -e "$line" "$routes" || true)
	if [ "$n" != 1 ]; then
		echo "process-compose-without-swagger-ui.sh: $routes has the line '${line#	}' $n times, not once: this process-compose differs from the versions checked (v1.64.1 to v1.122.0); update the script" >&2
		exit 1
	fi
	args+=(-e "$line")
done
grep -vxF "${args[@]}" "$routes" >"$routes.tmp"
mv "$routes.tmp" "$routes"

# No other file may import the package, or it would still be linked.
if others=$(grep -rlF --include='*.go' '"github.com/swaggo/files"' "$src/src"); then
	echo "process-compose-without-swagger-ui.sh: github.com/swaggo/files is still imported by: $others" >&2
	exit 1
fi
