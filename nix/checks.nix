# checks.<system> of the flake: everything `nix flake check` runs, in the build sandbox
# (no network; loopback only; fixed ports are private to the build on Linux).
{
  pkgs,
  lib,
  version,
  root,
  packages,
}:
let
  fs = lib.fileset;
  services = [
    packages.auth-api
    packages.core-api
    packages.psp-connector
  ];
  # What the tests read, named file by file: an allowlist, not "the repository minus docs",
  # because a `path:` flake's source is the whole directory, untracked files included:
  # .git, stack.local.env and .stack/ (Redis data, the generated JWT secret). The flake's
  # source itself is then in the store already (README: use a git checkout; the launcher's
  # default state dir is outside a checkout that is not one); the allowlist keeps the tests'
  # derivations from copying such files again. bench/ is its Go code only.
  testSource = fs.toSource {
    inherit root;
    fileset = fs.unions [
      (root + "/go.mod")
      (root + "/go.sum")
      (root + "/vendor")
      (root + "/cmd")
      (root + "/internal")
      (root + "/services")
      (root + "/e2e")
      (root + "/bench/benchtool")
      (root + "/tools")
      (root + "/nix/process-compose-without-swagger-ui.sh") # tools/build-process-compose runs it
      (root + "/nix/process-compose-logs-survive-a-full-disk.sh") # and this one
      (root + "/process-compose.yaml")
      (root + "/haproxy.cfg")
      (root + "/haproxy-errors")
      (root + "/stack.env")
    ];
  };
  # process-compose.yaml, haproxy.cfg, haproxy-errors/ and stack.env, as the launcher ships them.
  configSource = packages.stack.stackConfig;
  # A writable HOME and XDG dirs: process-compose and Go look there; the sandbox has none.
  sandboxHome = ''
    export HOME=$TMPDIR/home XDG_CONFIG_HOME=$TMPDIR/home/.config XDG_STATE_HOME=$TMPDIR/home/.state
    mkdir -p "$XDG_CONFIG_HOME" "$XDG_STATE_HOME"
  '';
  # stack.env's defaults, exported, as the launcher reads them.
  stackEnv = ''
    set -a
    . ${configSource}/stack.env
    set +a
  '';
  # Five free loopback ports in a row from a random base, as the stack's ports (the Linux
  # sandbox has a network of its own; darwin's build does not, nor does a Linux build without
  # the sandbox). The launcher takes the rest of its environment from its own stack.env, as
  # `nix run .#stack` does. The base is below the kernel's ephemeral range: a port there that
  # no one listens on passes the check, yet a client's connection elsewhere on the machine (a
  # test running beside this build) can hold it, or take it before the launcher binds it
  # (CI's offline flake check, 2026-12-07: ports 46258 and 46260 "not free" at `up`).
  freePorts = ''
    free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
    ephemeral=32768 # Linux's default first ephemeral port; darwin's is 49152
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
      read -r ephemeral _ < /proc/sys/net/ipv4/ip_local_port_range
    fi
    first=10000 span=$((ephemeral - 10005))
    if [ "$span" -lt 1000 ]; then first=20000 span=40000; fi # a range that starts low: as before
    for _ in $(seq 1 50); do
      base=$((first + RANDOM % span))
      free $base && free $((base + 1)) && free $((base + 2)) && free $((base + 3)) && free $((base + 4)) && break
    done
    export PLATFORM_PORT=$base HAPROXY_STATS_PORT=$((base + 1))
    export AUTH_API_PORT=$((base + 2)) CORE_API_PORT=$((base + 3)) PSP_CONNECTOR_PORT=$((base + 4))
  '';
in
{
  # Unit and integration tests of the whole module (every package, e2e/ included) with
  # CI=true: a test that needs redis-server, haproxy or process-compose fails instead of
  # skipping. buildGoModule tests exactly its subPackages, so this one sets none.
  go-test = pkgs.buildGoModule {
    pname = "platform-tests";
    inherit version;
    src = testSource;
    vendorHash = null;
    env = {
      CGO_ENABLED = 0;
      # A process-compose the flake could not rebuild (not a buildGoModule package: the offline
      # stand-in's) lacks the log edit of nix/packages.nix, and TestProcessComposeAfterAFullDisk
      # skips that half of it, saying so, instead of failing under CI=true.
      STACK_TEST_PROCESS_COMPOSE_UNEDITED = lib.optionalString (
        !(packages.process-compose.logsSurviveAFullDisk or false)
      ) "1";
    };
    nativeCheckInputs = [
      pkgs.redis
      pkgs.haproxy
      packages.process-compose
      packages.stack
    ]
    # No util-linux: the TUI test skips without script(1) (the offline stand-in has no
    # util-linux to give it); `go test ./...` in .ci/run runs it.
    ++ services;
    # Unix socket paths are limited to ~104 bytes and tests put sockets in t.TempDir(): give
    # them a short TMPDIR (darwin's and some build dirs are long; Linux's sandbox has /tmp).
    preCheck = sandboxHome + ''
      buildTmp=$TMPDIR
      export CI=true TMPDIR=$(mktemp -d /tmp/go-test.XXXXXX || echo "$TMPDIR")
    '';
    # The install and fixup phases that follow use TMPDIR (mktemp): give them back the build's.
    postCheck = ''
      case $TMPDIR in /tmp/go-test.*) rm -rf "$TMPDIR" ;; esac
      export TMPDIR=$buildTmp
    '';
    # buildGoModule runs `go test` once per package, with go's default limit of 10 minutes
    # a package; e2e/ starts whole stacks one after another (about 3 minutes on the 2-core
    # dev machine), which a slower builder could take past that.
    checkFlags = [ "-timeout=30m" ];
    __darwinAllowLocalNetworking = true;
  };

  # gofmt over every Go file outside vendor/.
  gofmt = pkgs.runCommand "platform-gofmt" { nativeBuildInputs = [ pkgs.go ]; } ''
    cd ${testSource}
    unformatted=$(find . -name '*.go' -not -path './vendor/*' -exec gofmt -l {} +)
    if [ -n "$unformatted" ]; then
      echo "gofmt would change:"; echo "$unformatted"; exit 1
    fi
    touch $out
  '';

  # HAProxy parses the router configuration with the stack's default environment.
  haproxy-config = pkgs.runCommand "platform-haproxy-config" { nativeBuildInputs = [ pkgs.haproxy ]; } (
    stackEnv
    + ''
      haproxy -c -f ${configSource}/haproxy.cfg
      touch $out
    ''
  );

  # The whole stack inside the build, started and stopped by the packaged launcher (e2e.nix).
  e2e = import ./e2e.nix {
    inherit
      pkgs
      lib
      services
      sandboxHome
      freePorts
      ;
    launcher = packages.stack;
  };
}
# The stack's process-compose really lost the Swagger UI (nix/packages.nix): its build info
# lists the modules linked into it. Only where the flake rebuilt it (not the offline stand-in).
// lib.optionalAttrs (packages.process-compose.withoutSwaggerUi or false) {
  process-compose-without-swagger-ui =
    pkgs.runCommand "platform-process-compose-without-swagger-ui" { nativeBuildInputs = [ pkgs.go ]; }
      ''
        bash ${./process-compose-without-swagger-ui.sh} --check ${lib.getExe packages.process-compose}
        touch $out
      '';
}
# And its logs go on after a failed write (nix/packages.nix): the binary holds the edit's notice.
// lib.optionalAttrs (packages.process-compose.logsSurviveAFullDisk or false) {
  process-compose-logs-survive-a-full-disk =
    pkgs.runCommand "platform-process-compose-logs-survive-a-full-disk" { }
      ''
        bash ${./process-compose-logs-survive-a-full-disk.sh} --check ${lib.getExe packages.process-compose}
        touch $out
      '';
}
