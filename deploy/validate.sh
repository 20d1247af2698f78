#!/usr/bin/env bash
# Offline validation of deploy/ (what CI can check without a Docker engine, a cluster or Helm; docs/deploy.md):
#   - yamllint (Debian package) over every YAML file in deploy/ and over the rendered Helm chart;
#   - nginx -t and promtool check config, binaries unpacked from the distribution's nginx and prometheus packages;
#   - Node (npm packages pinned by deploy/validate/package-lock.json, installed with `npm ci` into a cache outside the
#     repository): renders the chart, checks the committed deploy/helm/rendered/*.yaml are current, validates every
#     Kubernetes object against the Kubernetes schemas, the compose file against the compose-spec schema, lints the
#     Dockerfile, and checks the cross-file wiring (replicas ↔ nginx ↔ Prometheus).
# Exits non-zero on any problem. Options: --update (rewrite deploy/helm/rendered/ from the chart), --verbose.
# Cache: $TOKENGATEWAY_DEPLOY_VALIDATE_CACHE, default ~/.cache/tokengateway-deploy-validate.
set -euo pipefail
deploy="$(cd "$(dirname "$0")" && pwd)"
cache="${TOKENGATEWAY_DEPLOY_VALIDATE_CACHE:-${HOME:-/tmp}/.cache/tokengateway-deploy-validate}"

sudo_if_needed() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }

if ! command -v yamllint >/dev/null 2>&1; then
  echo "deploy/validate.sh: installing yamllint (Debian package)"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends yamllint >/dev/null \
    || { sudo_if_needed apt-get update >/dev/null && sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends yamllint >/dev/null; }
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "deploy/validate.sh: installing nodejs and npm (Debian packages)"
  sudo_if_needed apt-get update >/dev/null
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >/dev/null
fi

# npm ci into a directory keyed by the lock file, so a changed lock never reuses stale packages.
lock_hash="$(sha256sum "$deploy/validate/package-lock.json" | cut -c1-16)"
work="$cache/$lock_hash"
if [ ! -f "$work/.installed" ]; then
  echo "deploy/validate.sh: npm ci into $work"
  rm -rf "$work" && mkdir -p "$work"
  cp "$deploy/validate/package.json" "$deploy/validate/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch "$work/.installed"
fi
cp "$deploy/validate/validate.mjs" "$deploy/validate/render-chart.mjs" "$work/"

status=0
# 1. YAML lint: the plain YAML files, then the rendered chart output.
(cd "$deploy" && yamllint -s -c validate/yamllint.yml .) || status=1

# Binaries from distribution packages, fetched with `apt-get download` and unpacked into the cache: never installed, so
# no service starts and nothing needs root. Prints the binary's path, or nothing when it cannot be had.
apt_binary() { # package-candidates... -- path-inside-package
  local path="${*: -1}" dir="$cache/apt-$1"
  if [ ! -x "$dir/root/$path" ]; then
    rm -rf "$dir" && mkdir -p "$dir/debs"
    local pkg
    for pkg in "${@:1:$#-2}"; do
      if ! (cd "$dir/debs" && apt-get download "$pkg" >/dev/null 2>&1); then
        # Empty or stale package lists on a fresh machine: refresh once and retry.
        [ -n "${apt_updated:-}" ] && continue
        apt_updated=1
        sudo_if_needed apt-get update >/dev/null 2>&1 || true
        (cd "$dir/debs" && apt-get download "$pkg" >/dev/null 2>&1) || continue
      fi
      for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
      rm -f "$dir"/debs/*.deb
      [ -x "$dir/root/$path" ] && break
    done
  fi
  [ -x "$dir/root/$path" ] && echo "$dir/root/$path"
  return 0
}

# 2. nginx.conf syntax with a real `nginx -t`. The upstream host names (gateway-1, gateway-2) only resolve inside
#    compose, so a copy with them replaced by 127.0.0.1 is tested.
nginx_bin="$(apt_binary nginx nginx-core -- usr/sbin/nginx)"
if [ -n "$nginx_bin" ] && "$nginx_bin" -v >/dev/null 2>&1; then
  ngx="$(mktemp -d)"
  mkdir -p "$ngx/conf" && : > "$ngx/conf/mime.types"
  # Also move the pid file, temp paths (/tmp/… in the container) and logs (/dev/stdout, /dev/stderr) into the scratch
  # directory: nginx -t opens them all.
  sed -E -e 's/server gateway-[0-9]+:/server 127.0.0.1:/' -e "s#/tmp/#$ngx/#g" -e "s#/dev/std(out|err)#$ngx/\\1.log#g" \
    "$deploy/nginx/nginx.conf" > "$ngx/conf/nginx.conf"
  if "$nginx_bin" -t -q -p "$ngx/" -c "$ngx/conf/nginx.conf" -e "$ngx/error.log" 2> "$ngx/test.out"; then
    echo "nginx -t: deploy/nginx/nginx.conf ok"
  else
    sed "s#$ngx/conf/nginx.conf#deploy/nginx/nginx.conf (host names replaced)#" "$ngx/test.out" >&2
    status=1
  fi
  rm -rf "$ngx"
else
  echo "deploy/validate.sh: nginx could not be fetched with apt-get download; nginx.conf syntax NOT checked" >&2
fi

# 3. prometheus.yml with `promtool check config` (from the distribution's prometheus package).
promtool_bin="$(apt_binary prometheus -- usr/bin/promtool)"
if [ -n "$promtool_bin" ]; then
  if "$promtool_bin" check config "$deploy/prometheus/prometheus.yml" >/dev/null; then echo "promtool check config: deploy/prometheus/prometheus.yml ok"; else status=1; fi
else
  echo "deploy/validate.sh: promtool could not be fetched with apt-get download; prometheus.yml NOT checked by promtool" >&2
fi

# 4. Schemas, rendering, wiring.
TOKENGATEWAY_DEPLOY_DIR="$deploy" node "$work/validate.mjs" "$@" || status=1

if [ "$status" -ne 0 ]; then echo "deploy/validate.sh: FAILED" >&2; fi
exit "$status"
