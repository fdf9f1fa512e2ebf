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
  # Everything the tests may read: the whole repository except docs and the Nix files.
  testSource = fs.toSource {
    inherit root;
    fileset = fs.difference root (
      fs.unions [
        (fs.fileFilter (f: f.hasExt "md") root)
        (root + "/flake.nix")
        (root + "/flake.lock")
        (root + "/nix")
      ]
    );
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
  # What the launcher adds for process-compose (see cmd/stack/up.go): the state dir (here
  # under $TMPDIR), a fresh JWT secret, the stop timeouts. Ports: five free ones in a row
  # from a random base (the Linux sandbox has a network of its own; darwin's build does not).
  launcherEnv = stackEnv + ''
    free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
    for _ in $(seq 1 50); do
      base=$((20000 + RANDOM % 40000))
      free $base && free $((base + 1)) && free $((base + 2)) && free $((base + 3)) && free $((base + 4)) && break
    done
    set -a
    STACK_STATE_DIR=$TMPDIR/state
    PLATFORM_PORT=$base HAPROXY_STATS_PORT=$((base + 1))
    AUTH_API_PORT=$((base + 2)) CORE_API_PORT=$((base + 3)) PSP_CONNECTOR_PORT=$((base + 4))
    REDIS_URL=unix://$STACK_STATE_DIR/redis/redis.sock
    AUTH_API_SOCKET=$STACK_STATE_DIR/run/auth-api.sock CORE_API_SOCKET=$STACK_STATE_DIR/run/core-api.sock
    SHUTDOWN_GRACE=2s STACK_SERVICE_STOP_TIMEOUT=7
    STACK_HAPROXY_STOP_SIGNAL=$(kill -l USR1)
    STACK_CONFIG_DIR=${configSource}
    JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    set +a
    mkdir -p -m 0700 "$STACK_STATE_DIR" "$STACK_STATE_DIR/redis" "$STACK_STATE_DIR/run" "$STACK_STATE_DIR/logs"
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
    env.CGO_ENABLED = 0;
    nativeCheckInputs = [
      pkgs.redis
      pkgs.haproxy
      pkgs.process-compose
      packages.stack
    ]
    ++ services;
    # Unix socket paths are limited to ~104 bytes and tests put sockets in t.TempDir(): give
    # them a short TMPDIR (darwin's and some build dirs are long; Linux's sandbox has /tmp).
    preCheck = sandboxHome + ''
      export CI=true TMPDIR=$(mktemp -d /tmp/go-test.XXXXXX || echo "$TMPDIR")
    '';
    postCheck = ''
      case $TMPDIR in /tmp/go-test.*) rm -rf "$TMPDIR" ;; esac
    '';
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

  # process-compose loads and validates process-compose.yaml without starting anything.
  process-compose-config =
    pkgs.runCommand "platform-process-compose-config" { nativeBuildInputs = [ pkgs.process-compose ]; }
      (
        sandboxHome
        + launcherEnv
        + ''
          process-compose up --dry-run -t=false --no-server -L $TMPDIR/pc.log \
            -f ${configSource}/process-compose.yaml
          touch $out
        ''
      );

  # The whole stack, headless, inside the build, ended by a test process (e2e.nix).
  e2e = import ./e2e.nix {
    inherit
      pkgs
      lib
      services
      configSource
      sandboxHome
      launcherEnv
      ;
    launcher = packages.stack;
  };
}
