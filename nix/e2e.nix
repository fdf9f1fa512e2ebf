# checks.<system>.e2e: the whole stack inside the build. process-compose runs the repo's
# process-compose.yaml headless (-t=false) plus one more process, `e2e`, which waits for
# HAProxy and the connector, drives the platform through HAProxy, and ends process-compose
# with its own exit status (availability.exit_on_end). A hard timeout bounds it all.
{
  pkgs,
  lib,
  launcher,
  services,
  launcherEnv,
  configSource,
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
  extraProcess = pkgs.writeText "e2e.process-compose.yaml" (
    builtins.toJSON {
      version = "0.5";
      processes.e2e = {
        command = lib.getExe test;
        depends_on = {
          haproxy.condition = "process_healthy";
          psp-connector.condition = "process_healthy";
        };
        availability = {
          restart = "no";
          exit_on_end = true;
          exit_on_skipped = true;
        };
      };
    }
  );
in
pkgs.runCommand "platform-e2e"
  {
    nativeBuildInputs = [
      pkgs.process-compose
      pkgs.redis
      pkgs.haproxy
    ]
    ++ services;
    # On darwin the build shares the host's network (checks.nix picks free ports).
    __darwinAllowLocalNetworking = true;
  }
  (
    sandboxHome
    + launcherEnv
    + ''
      export STACK_LAUNCHER=${lib.getExe launcher}
      mkdir -p "$out"
      status=0
      timeout -k 10 300 process-compose up -t=false --ordered-shutdown --disable-dotenv --no-server \
        -L "$STACK_STATE_DIR/logs/process-compose.log" \
        -f ${configSource}/process-compose.yaml -f ${extraProcess} || status=$?
      cp "$STACK_STATE_DIR"/logs/*.log "$out"/
      if [ "$status" -ne 0 ]; then
        for f in "$STACK_STATE_DIR"/logs/*.log; do
          echo "==> $f (last 30 lines)"; tail -n 30 "$f"
        done
        echo "e2e: process-compose exited with status $status" >&2
        exit 1
      fi
      # The run's JWT secret must be in none of the store paths the flake built or this
      # check writes: not in a package (launcher, services, shipped configs), not in a log.
      if grep -rlF -- "$JWT_SECRET" "$out" ${launcher} ${toString services} ${configSource}; then
        echo "e2e: the JWT secret of this run is in the store paths above" >&2
        exit 1
      fi
      echo "e2e: the run's JWT secret is in no built store path and no log"
    ''
  )
