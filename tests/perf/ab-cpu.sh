#!/bin/bash
# A/B of CPU per request (issue #17): two gateway builds side by side behind one simulator, plain YARP as the yardstick,
# wrk -t1 -c32 -d8s with chat-1k.lua per target, order alternated per round, CPU = utime+stime of each process from
# /proc divided by the requests wrk completed (needs wrk: `apt-get install wrk`). Loopback only; every run is bounded (rounds x 3 targets x 8 s + warm-up).
#
#   BASE=9400 tests/perf/ab-cpu.sh GW_DIR_A GW_DIR_B [rounds=4] [optimize_off: 1 or empty] ["env for A"] ["env for B"]
#
# GW_DIR_* are COPIES of Release outputs of src/TokenGateway (never a directory being rebuilt), e.g. an old build from a
# clone of an older commit and `cp -r src/TokenGateway/bin/Release/net10.0 /tmp/gw-new`. The simulator and YARP baseline
# come from this checkout's Release build (SIM_DIR / YARP_DIR override). SIMARGS are extra simulator arguments; the
# default announces a provider tier large enough for the load, so the gateway's key never cools and the happy path is
# measured (with the simulator's default 10,000 requests/min the key cools within seconds; docs/performance.md).
set -u
A_DIR=$1; B_DIR=$2; ROUNDS=${3:-4}; OPT=${4:-}; A_ENV=${5:-}; B_ENV=${6:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIM_DIR=${SIM_DIR:-$ROOT/src/TokenGateway.Simulator/bin/Release/net10.0}
YARP_DIR=${YARP_DIR:-$ROOT/tests/TokenGateway.YarpBaseline/bin/Release/net10.0}
LUA=${LUA:-$ROOT/tests/perf/chat-1k.lua}
SIMARGS=${SIMARGS:---Simulator:RateLimitRequestsPerMinute=1000000000 --Simulator:RateLimitTokensPerMinute=1000000000000}
BASE=${BASE:-9400}; S=$BASE; PA=$((BASE+1)); PB=$((BASE+2)); PY=$((BASE+3))
W=$(mktemp -d /tmp/ab-cpu.XXXX)
stop_all() { pkill -f "urls http://127.0.0.1:($S|$PA|$PB|$PY)( |$)"; }
stop_all; sleep 1
# shellcheck disable=SC2086
SIMULATOR_API_KEY=sk-bench nohup dotnet "$SIM_DIR/TokenGateway.Simulator.dll" --urls http://127.0.0.1:$S $SIMARGS >"$W/sim.log" 2>&1 &
nohup dotnet "$YARP_DIR/TokenGateway.YarpBaseline.dll" --urls http://127.0.0.1:$PY --Baseline:Destination=http://127.0.0.1:$S/ >"$W/yarp.log" 2>&1 &
start_gw() { # dir env port
  # shellcheck disable=SC2086
  (cd "$1" && env OPENAI_API_KEY=sk-bench TOKENGATEWAY_ADMIN_KEY=tga-bench-admin-0000000000 $2 nohup dotnet TokenGateway.dll \
    --urls http://127.0.0.1:$3 --Providers:openai:Destinations:0=http://127.0.0.1:$S/ --Storage:DataDirectory="$W/data$3" >"$W/gw$3.log" 2>&1 &)
}
start_gw "$A_DIR" "$A_ENV" $PA; start_gw "$B_DIR" "$B_ENV" $PB
for _ in $(seq 1 60); do curl -sf localhost:$PA/healthz >/dev/null && curl -sf localhost:$PB/healthz >/dev/null && break; sleep 1; done
mkkey() {
  local team
  team=$(curl -s -X POST localhost:$1/admin/teams -H "Authorization: Bearer tga-bench-admin-0000000000" -H 'content-type: application/json' -d '{"name":"bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  curl -s -X POST localhost:$1/admin/teams/$team/keys -H "Authorization: Bearer tga-bench-admin-0000000000" -H 'content-type: application/json' -d '{"name":"b"}' | sed 's/.*"key":"\([^"]*\)".*/\1/'
}
KA=$(mkkey $PA); KB=$(mkkey $PB)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
pid_of() { pgrep -f "urls http://127.0.0.1:$1( |$)" | head -1; }
key_of() { case $1 in $PA) echo "$KA";; $PB) echo "$KB";; *) echo sk-bench;; esac; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
run() { # port label
  local pid c0 c1 out reqs rps
  pid=$(pid_of $1); c0=$(cpu $pid)
  out=$(env KEY="$(key_of $1)" ${OPT:+OPT_OFF=1} wrk -t1 -c32 -d8s -s "$LUA" http://127.0.0.1:$1/v1/chat/completions)
  c1=$(cpu $pid)
  reqs=$(echo "$out" | awk '/requests in/{print $1}'); rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  echo "$2 rps=$rps cpu_us_per_req=$(( (c1 - c0) * TICK_US / reqs )) non2xx=$(echo "$out" | grep -c Non-2xx)"
}
for _ in 1 2; do for p in $PY $PA $PB; do env KEY="$(key_of $p)" ${OPT:+OPT_OFF=1} wrk -t1 -c32 -d5s -s "$LUA" http://127.0.0.1:$p/v1/chat/completions >/dev/null; done; done
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="$PY $PA $PB"; else order="$PB $PA $PY"; fi
  for p in $order; do case $p in $PY) run $p yarp;; $PA) run $p A;; $PB) run $p B;; esac; done
  echo "-- load $(cut -d' ' -f1 /proc/loadavg)"
done
stop_all; rm -rf "$W"
