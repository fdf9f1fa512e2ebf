# The payments platform as a flake: auth-api, core-api and psp-connector (Go) behind
# HAProxy, on Redis, supervised by process-compose through one launcher, `stack`.
#
#   nix run .#stack              the whole stack, from a checkout or from anywhere
#   nix flake check              Go tests on real Redis, haproxy -c, gofmt, and the whole
#                                stack end to end inside the build, through the launcher
#   nix develop                  Go, gopls, golangci-lint, Redis, HAProxy, process-compose
#   nix build .#core-api-image   a non-root container image per service (Linux); docker load < result
#
# Every binary comes from one mkService (nix/packages.nix) over buildGoModule and the
# committed vendor/ (vendorHash = null); sources are cut with lib.fileset, so editing docs or
# tests rebuilds no package. The checks are in nix/checks.nix.
{
  description = "Payments platform: token, transaction and PSP services behind HAProxy, on Redis";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      version = "0.1.0";
      # nixos-26.05 is the last nixpkgs release with x86_64-darwin (its release notes, as
      # quoted in nix-community/infra#1860): a lock moved to a later release must drop it,
      # or evaluating its outputs fails.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      # nixos-26.05 warns at every evaluation of its x86_64-darwin package set (its
      # release notes: the last release with it), and `nix flake check` evaluates every
      # system's outputs, so every check on any machine printed that warning. The opt-in
      # they name keeps it quiet; the other systems take the shared legacyPackages.
      pkgsFor =
        system:
        if system == "x86_64-darwin" then
          import nixpkgs {
            inherit system;
            config.allowDeprecatedx86_64Darwin = true;
          }
        else
          nixpkgs.legacyPackages.${system};
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f {
            pkgs = pkgsFor system;
            packages = self.packages.${system};
          }
        );
    in
    {
      packages = forAllSystems (
        { pkgs, ... }:
        import ./nix/packages.nix {
          inherit pkgs lib version;
          root = ./.;
        }
      );

      apps = forAllSystems (
        { packages, ... }:
        let
          stack = {
            type = "app";
            program = lib.getExe packages.stack;
            meta.description = "Run the platform locally: stack up [--detach --wait], status, logs, down, reset";
          };
        in
        {
          inherit stack;
          default = stack;
          loadgen = {
            type = "app";
            program = lib.getExe packages.loadgen;
            meta.description = "Load the running stack and verify every accepted transaction is processed";
          };
        }
      );

      devShells = forAllSystems (
        { pkgs, packages }:
        {
          default = pkgs.mkShell {
            packages = with pkgs; [
              go
              gopls
              golangci-lint
              redis
              haproxy
              packages.process-compose # the stack's: without its API's Swagger UI (nix/packages.nix)
              httpie
              jq
            ];
            env.GOTOOLCHAIN = "local"; # go.mod's go line is the floor; never download another Go
            # The banner goes to stderr: `nix develop -c cmd` keeps cmd's stdout its own.
            shellHook = ''
              {
                echo "platform dev shell:"
                echo "  go run ./cmd/stack up    start the stack (Ctrl-C stops it)"
                echo "  go test ./...            unit and integration tests, on real Redis"
                echo "  nix flake check          what CI checks, the whole-stack test included"
              } >&2
            '';
          };
        }
      );

      checks = forAllSystems (
        { pkgs, packages }:
        import ./nix/checks.nix {
          inherit pkgs lib version packages;
          root = ./.;
        }
      );

      # nixfmt through treefmt: since Nix 2.25 `nix fmt` passes no path, and bare nixfmt would
      # wait on stdin; nixfmt-tree formats every .nix file of the tree.
      formatter = forAllSystems ({ pkgs, ... }: pkgs.nixfmt-tree);
    };
}
