#!/usr/bin/env bash
# Every comparison, profile and ranking behind benchmarks/README.md, in one go
# (about 45 minutes on 2 CPUs). Run from the repository root with the dev venv:
#
#   bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

$PY benchmarks/compare.py fanout
$PY benchmarks/compare.py echo
$PY benchmarks/compare.py echo --name echo-pipeline16 \
    --targets hubbub,hubbub-rpc,picows,node-ws -- --pipeline 16
$PY benchmarks/compare.py connect
$PY benchmarks/compare.py rooms
$PY benchmarks/compare.py fanout --name engines-fanout --baseline hubbub \
    --targets hubbub,hubbub-history,hubbub-presence,hubbub-protobuf -- --rate 20 --max-steps 9
$PY benchmarks/compare.py connect --name engines-connect --baseline hubbub \
    --targets hubbub,hubbub-history,hubbub-presence

$PY benchmarks/multinode.py
# --workers 2 against --workers 1, each worker limited to 0.15 CPU (root only: cgroups).
$PY benchmarks/multinode.py --targets redis-w1,redis-w2 --baseline redis-w1 --cpu-quota 0.15 \
    --name workers-scaling -- --rate 50 --step-factor 1.25 --max-steps 20 \
    || echo "workers scaling skipped"
$PY benchmarks/compare.py fanout --name fanout-100subs --targets hubbub,picows -- \
    --subscribers 100 --max-steps 20
$PY benchmarks/write_floor.py --subscribers 10,100,300,1000 --rounds 40
# The same with the receivers' TCP work steered to their own core (root only).
$PY benchmarks/write_floor.py --subscribers 10,100,300,1000 --rounds 40 --steer-receive 1 \
    --out benchmarks/results/write-floor-steered.json || echo "steered write floor skipped"
for mode in dispatch rpc rpc16 fanout; do $PY benchmarks/instructions.py "$mode"; done

$PY benchmarks/pyspy_profile.py fanout --name fanout-1000subs-20pubs --seconds 10 -- \
    --subscribers 1000 --rate 20 --step-factor 1 --duration 16 --warmup 0
$PY benchmarks/pyspy_profile.py fanout --name fanout-1000subs-400pubs --seconds 10 -- \
    --subscribers 1000 --rate 400 --step-factor 1 --duration 16 --warmup 0
$PY benchmarks/pyspy_profile.py echo --rpc --name echo-rpc-100conns-pipeline16 --seconds 10 -- \
    --connections 100 --mode rpc --pipeline 16 --duration 16 --warmup 0
# The load generator's own cost: its busiest worker under fan-out, and its wire alone.
$PY benchmarks/pyspy_profile.py fanout --sample generator --name generator-fanout-880pubs-$(git rev-parse --short HEAD) \
    --delay 6 --seconds 6 -- --subscribers 1000 --payload-size 64 --rate 880 --step-factor 1 \
    --max-steps 1 --duration 14 --no-half-rate
$PY benchmarks/wire_receive.py
$PY benchmarks/cpu_gaps.py --seconds 20
$PY benchmarks/pyspy_profile.py connect --name connect-15k --delay 1 --seconds 6 -- \
    --connections 15000 --concurrency 300 --hold 2

$PY -m hubbub.cli evaluate rank --decision benchmarks/decision.yaml \
    --json benchmarks/results/decision.json \
  || $PY -c "from hubbub.evaluate.cli import app; app()" rank \
    --decision benchmarks/decision.yaml --json benchmarks/results/decision.json
