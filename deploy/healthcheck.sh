#!/bin/bash
# Container HEALTHCHECK for TokenGateway: GET /healthz on the management port, success only on HTTP 200.
# The .NET runtime image ships neither curl nor wget, so this uses bash's /dev/tcp (bash is in the Ubuntu-based
# aspnet image; a chiseled/distroless image would need another approach, see docs/deploy.md).
# Port: TOKENGATEWAY_HEALTH_PORT, default 9464 (the image's Management__Urls).
set -u
port="${TOKENGATEWAY_HEALTH_PORT:-9464}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 3 status <&3 || exit 1
exec 3<&-
case "$status" in
  "HTTP/1.1 200"*|"HTTP/1.0 200"*) exit 0 ;;
  *) exit 1 ;;
esac
