# packages.<system> of the flake: one static Go binary per service, the `stack` launcher
# (with its config and every program it runs), `default` joining them, and on Linux a
# container image per service (image.nix).
{
  pkgs,
  lib,
  version,
  root,
}:
let
  fs = lib.fileset;
  # What a binary is built from: Go code and embedded data, no docs, no tests. Tests are
  # *_test.go, every testdata/ (fuzz corpora) and the tests' own helper packages, which no
  # binary imports (a build that needed one would fail on the missing package): editing any
  # of them rebuilds no package.
  testHelpers = map (p: toString (root + "/internal/${p}")) [
    "gopin"
    "redistest"
    "servicetest"
    "stacktest"
  ];
  code =
    dir:
    fs.fromSource (
      lib.cleanSourceWith {
        src = dir;
        filter =
          path: type:
          let
            name = baseNameOf path;
          in
          if type == "directory" then
            name != "testdata" && !lib.elem path testHelpers
          else
            !lib.hasSuffix ".md" name && !lib.hasSuffix "_test.go" name;
      }
    );

  # Every binary of the module: a static binary of one main package, from the committed
  # vendor/ (vendorHash = null), rebuilt only when its own sources change.
  # stampVersion: the main package declares `var version` for -X main.version (loadgen
  # does not).
  mkService =
    {
      name,
      dir,
      description,
      stampVersion ? true,
      ...
    }@args:
    assert lib.assertMsg (builtins.pathExists (root + "/vendor/modules.txt"))
      "vendor/ is missing: run `go mod vendor` and commit it (the flake builds with vendorHash = null)";
    pkgs.buildGoModule (
      removeAttrs args [
        "name"
        "dir"
        "description"
        "stampVersion"
      ]
      // {
        pname = name;
        inherit version;
        src = fs.toSource {
          inherit root;
          fileset = fs.unions [
            (root + "/go.mod")
            (root + "/go.sum")
            (root + "/vendor")
            (code (root + "/internal"))
            (code (root + "/${dir}"))
          ];
        };
        vendorHash = null;
        subPackages = [ dir ];
        env.CGO_ENABLED = 0;
        ldflags = [
          "-s"
          "-w"
        ]
        ++ lib.optional stampVersion "-X main.version=${version}";
        doCheck = false; # the module's tests run once, in checks.go-test, on real Redis
        meta = {
          inherit description;
          mainProgram = name;
        };
      }
    );

  services =
    lib.mapAttrs
      (
        name: description:
        mkService {
          inherit name description;
          dir = "services/${name}";
        }
      )
      {
        auth-api = "Issues 30-second HS256 tokens to the platform's users";
        core-api = "Accepts transactions and queues them on Redis";
        psp-connector = "Takes queued transactions off Redis and makes them with the PSP";
      };

  # The stack's committed files as one store path: the launcher finds them in
  # <prefix>/share/acme-platform (see internal/stackconfig) unless it runs inside a checkout,
  # whose own files then win; the checks use the same path (passthru.stackConfig).
  stackConfig = fs.toSource {
    inherit root;
    fileset = fs.unions [
      (root + "/process-compose.yaml")
      (root + "/haproxy.cfg")
      (root + "/haproxy-errors")
      (root + "/stack.env")
    ];
  };
  # nixpkgs' process-compose without the Swagger UI of its API, by the same edit as
  # tools/build-process-compose (nix/process-compose-without-swagger-ui.sh): the UI's package
  # copies 8.5 MB into memory at start, 17.6 MB of RSS, half of what process-compose holds idle
  # (BENCHMARKS.md, "process-compose's Swagger UI"). And with logs that go on after a failed
  # write, a full disk say (nix/process-compose-logs-survive-a-full-disk.sh, RELIABILITY.md
  # D126): upstream's stop for good at the first one. Built from source, about 75 s once per
  # nixpkgs update; its vendored modules stay nixpkgs' own (same vendorHash, from the binary
  # cache): overrideModAttrs keeps the edit out of the goModules derivation, whose
  # `go mod vendor` would otherwise drop the two packages and miss the hash (goModules also
  # takes prePatch, patches and preBuild: an edit moved there must be reset there too). Not a
  # buildGoModule package (an overlay's prebuilt binary; the offline stand-in's): used as it is.
  processCompose =
    if pkgs.process-compose ? goModules then
      pkgs.process-compose.overrideAttrs (
        _: prev: {
          postPatch = (prev.postPatch or "") + ''
            bash ${./process-compose-without-swagger-ui.sh} .
            bash ${./process-compose-logs-survive-a-full-disk.sh} .
          '';
          passthru = (prev.passthru or { }) // {
            withoutSwaggerUi = true; # checks.process-compose-without-swagger-ui
            logsSurviveAFullDisk = true; # checks.process-compose-logs-survive-a-full-disk
            overrideModAttrs = lib.composeExtensions (prev.passthru.overrideModAttrs or (_: _: { })) (
              _: _: { postPatch = prev.postPatch or ""; }
            );
          };
        }
      )
    else
      pkgs.process-compose;

  # What the launcher runs, first on its PATH: `nix run` never depends on the host's tools.
  # bash too: process-compose runs each readiness probe's command with `bash -c` ($COMPOSE_SHELL
  # unset), looked up on PATH, and nixpkgs' process-compose is not wrapped with one.
  runtime = [
    pkgs.bash
    pkgs.redis
    pkgs.haproxy
    processCompose
  ]
  ++ lib.attrValues services;

  stack = mkService {
    name = "stack";
    dir = "cmd/stack";
    description = "Starts, waits for, shows and stops the whole platform";
    nativeBuildInputs = [ pkgs.makeBinaryWrapper ];
    passthru = { inherit stackConfig; };
    postInstall = ''
      mkdir -p $out/share
      ln -s ${stackConfig} $out/share/acme-platform
      wrapProgram $out/bin/stack --prefix PATH : ${lib.makeBinPath runtime}
    '';
  };
  # The load generator (cmd/loadgen): drives the merchant flow through the router and
  # checks that every accepted transaction is processed.
  loadgen = mkService {
    name = "loadgen";
    dir = "cmd/loadgen";
    description = "Load generator for the platform: tokens and transactions through the router, verified";
    stampVersion = false;
  };
in
services
// {
  inherit stack loadgen;
  # The process-compose the stack runs (above), also in `nix develop`.
  process-compose = processCompose;
  default = pkgs.symlinkJoin {
    name = "platform-${version}";
    paths = lib.attrValues services ++ [
      stack
      loadgen
    ];
    meta.mainProgram = "stack";
  };
}
// lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux (
  lib.mapAttrs' (
    name: pkg:
    lib.nameValuePair "${name}-image" (
      import ./image.nix {
        inherit
          pkgs
          lib
          version
          name
          pkg
          ;
      }
    )
  ) services
)
