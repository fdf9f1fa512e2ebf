# packages.<linux system>.<service>-image: a layered image of one service (a Docker image
# archive, for docker load or podman load), run as
# nobody (65534, from fakeNss), listening on 0.0.0.0:5000; configure it with the service's
# environment (REDIS_URL, JWT_SECRET, ...): docker load < result && docker run -e ... <name>.
{
  pkgs,
  lib,
  version,
  name,
  pkg,
}:
pkgs.dockerTools.buildLayeredImage {
  name = "acme-payments/${name}";
  tag = version;
  contents = [
    pkgs.dockerTools.fakeNss # /etc/passwd and /etc/group with root and nobody
    pkgs.dockerTools.caCertificates # for rediss:// URLs
  ];
  config = {
    Entrypoint = [ (lib.getExe pkg) ];
    User = "65534:65534";
    Env = [
      "HTTP_HOST=0.0.0.0"
      "HTTP_PORT=5000"
    ];
    ExposedPorts."5000/tcp" = { };
  };
}
