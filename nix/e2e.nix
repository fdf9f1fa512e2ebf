# checks.<system>.e2e: the whole stack inside the build, run the way `nix run .#stack` runs
# it: the packaged launcher, with its own share/acme-platform files and its own PATH, brings
# it up detached and waits for every readiness probe; a test script drives the platform
# through HAProxy; `stack down` stops it. Hard timeouts bound every step.
{
  pkgs,
  lib,
  launcher,
  services,
  freePorts,
  sandboxHome,
}:
let
  # token -> transaction -> status "processed", the connector's contract line, and the
  # router's own answers; every request goes through HAProxy.
  test = pkgs.writeShellApplication {
    name = "platform-e2e-test";
    runtimeInputs = with pkgs; [
      curl
      jq
      coreutils
      gnugrep
    ];
    text = builtins.readFile ./e2e-test.sh;
  };
in
pkgs.runCommand "platform-e2e"
  {
    nativeBuildInputs = [
      launcher
      test
    ];
    # On darwin the build shares the host's network (freePorts picks free ports).
    __darwinAllowLocalNetworking = true;
  }
  (
    sandboxHome
    + freePorts
    + ''
      export STACK_STATE_DIR=$TMPDIR/state SHUTDOWN_GRACE=2s
      status=0
      timeout -k 10 180 stack up --detach --wait --timeout 120s || status=$?
      if [ "$status" -eq 0 ]; then
        timeout -k 10 60 ${lib.getExe test} || status=$?
      fi
      down=0
      timeout -k 10 60 stack down || down=$?
      [ "$status" -ne 0 ] || status=$down
      if [ "$status" -ne 0 ]; then
        for f in "$STACK_STATE_DIR"/logs/*; do
          echo "==> $f (last 30 lines)"; tail -n 30 "$f"
        done
        echo "e2e: failed with status $status" >&2
        exit 1
      fi
      # The JWT secret the launcher generated for this run must be in none of the store paths
      # the flake built: not in a package (launcher, services, shipped configs); nor in the
      # run's logs.
      secret=$(cat "$STACK_STATE_DIR/secrets/jwt_secret")
      [ -n "$secret" ] || { echo "e2e: no generated JWT secret" >&2; exit 1; }
      # grep exits 1 when it finds nothing; 0 (found) and 2 (could not read) both fail.
      found=0
      grep -rlF -- "$secret" "$STACK_STATE_DIR/logs" ${launcher} ${toString services} ${launcher.stackConfig} || found=$?
      if [ "$found" -ne 1 ]; then
        echo "e2e: the JWT secret of this run is in the logs or store paths above, or grep could not read them (status $found)" >&2
        exit 1
      fi
      echo "e2e: the run's JWT secret is in no built store path and no log"
      # The packages were built before that secret existed, so the search above can only find
      # it in the logs. What could put a secret into a package is a value baked in at build
      # time (a JWT_SECRET with a value in a shipped file or in the launcher's wrapper, binary
      # included) or a developer's secret file copied into the source: look for both shapes.
      baked=0
      grep -rlaE -- 'JWT_SECRET=[^$"[:space:]]' ${launcher} ${toString services} ${launcher.stackConfig} || baked=$?
      if [ "$baked" -ne 1 ]; then
        echo "e2e: a JWT_SECRET with a value is baked into the store paths above, or grep could not read them (status $baked)" >&2
        exit 1
      fi
      files=$(find -L ${launcher} ${toString services} ${launcher.stackConfig} \( -name stack.local.env -o -name jwt_secret -o -name .stack \) -print)
      if [ -n "$files" ]; then
        echo "e2e: secret files in the built store paths: $files" >&2
        exit 1
      fi
      echo "e2e: no JWT_SECRET value and no secret file in the built store paths"
      # The output is only a stamp, the same on every run, so that `nix build --rebuild` or
      # `--check` of this check compares equal; the run's logs (timestamps, pids, ports) would
      # not. What the run did is in the build log (nix log, or nix build -L).
      echo "platform-e2e: passed" > "$out"
    ''
  )
