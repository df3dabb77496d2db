#!/usr/bin/env bash
# Soak: millions of short jobs through `pilotq sim`, sampling the master's
# RSS, the live sled database, the sealed segments and the history store
# every 5 s, then timing what a long-lived site's operators run:
#   restart to serving, condor_history -limit 100, condor_q over 10,000 live
#   jobs beside the history, pilotq journal stats and plot.
#
#   JOBS=5000000 bash bins/benches/soak.sh        (release binaries)
#
# Figures go to $OUT/summary.txt; BENCHMARKS.md records them.
set -euo pipefail
JOBS=${JOBS:-5000000}
OUT=${OUT:-/tmp/pilotq-soak}
BIN=${PILOTQ_BIN:-target/release/pilotq}
CONDOR_Q=$(dirname "$BIN")/condor_q
CONDOR_HISTORY=$(dirname "$BIN")/condor_history
rm -rf "$OUT"
mkdir -p "$OUT"
J="$OUT/journal"

"$BIN" sim --workers 2000 --cores-per-worker 4 --jobs "$JOBS" --duration fixed:20ms \
    --journal "$J" --timeout 180m --report-json "$OUT/report.json" \
    >"$OUT/sim.log" 2>&1 &
SIM=$!

sizeof() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }
echo "# unix_s master_rss_kb completed live_db_bytes sealed_bytes history_bytes" >"$OUT/samples.txt"
while kill -0 "$SIM" 2>/dev/null; do
    MPID=$(pgrep -f -- "pilotq master .*--journal $J" | head -1 || true)
    if [ -n "$MPID" ] && [ -r "/proc/$MPID/status" ]; then
        rss=$(awk '/VmRSS/{print $2}' "/proc/$MPID/status" 2>/dev/null || echo 0)
        pw=$(tr '\0' '\n' <"/proc/$MPID/cmdline" | sed -n '/^--password-file$/{n;p}')
        addr=$(sed -n 's/.*master listening on \([^,]*\),.*/\1/p' "$OUT/sim.log" | tail -1)
        done_=$("$BIN" status --json --master "$addr"  --password-file "$pw" 2>/dev/null |
            python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["completed"]+s["history_completed"])' 2>/dev/null || echo -)
        live=$(du -sb --exclude=sealed --exclude=history --exclude=pilotq-reserve "$J" 2>/dev/null | cut -f1 || echo 0)
        echo "$(date +%s) $rss $done_ $live $(sizeof "$J/sealed") $(sizeof "$J/history")" >>"$OUT/samples.txt"
    fi
    # The sim deletes its scratch (and the master's log) on success: keep
    # the snapshot lines ("snapshot taken … encode_ms").
    if [ -n "${pw:-}" ] && [ -f "$(dirname "$pw")/master.log" ]; then
        grep -h "snapshot taken" "$(dirname "$pw")/master.log" >"$OUT/snapshots.log" 2>/dev/null || true
    fi
    sleep 5
done
wait "$SIM" || echo "sim exited with $?" >>"$OUT/summary.txt"

{
    echo "== sim"
    tail -20 "$OUT/sim.log"
    echo "== journal parts after the run (bytes)"
    echo "live sled database: $(du -sb --exclude=sealed --exclude=history --exclude=pilotq-reserve "$J" | cut -f1)"
    echo "sealed segments:    $(sizeof "$J/sealed") in $(ls "$J/sealed" | wc -l) files"
    echo "history store:      $(sizeof "$J/history")"
} >>"$OUT/summary.txt"

# Restart to serving: start a master on the soak's journal, time until
# `pilotq status` answers.
PORT=$((20000 + RANDOM % 20000))
t0=$(date +%s.%N)
"$BIN" master --journal "$J" --listen "127.0.0.1:$PORT" >"$OUT/master.log" 2>&1 &
MASTER=$!
until "$BIN" status --master "127.0.0.1:$PORT" >/dev/null 2>&1; do sleep 0.01; done
t1=$(date +%s.%N)
echo "restart to serving: $(python3 -c "print(f'{$t1-$t0:.3f}')") s" >>"$OUT/summary.txt"

export PILOTQ_MASTER="127.0.0.1:$PORT"
timeit() { # label, command...
    local label=$1
    shift
    local a b
    a=$(date +%s.%N)
    "$@" >/dev/null
    b=$(date +%s.%N)
    echo "$label: $(python3 -c "print(f'{($b-$a)*1000:.0f}')") ms" >>"$OUT/summary.txt"
}
for i in 1 2 3; do timeit "condor_history -limit 100 (run $i)" "$CONDOR_HISTORY" -limit 100; done
records=$("$BIN" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["history_completed"]+s["history_removed"])')
echo "history records: $records" >>"$OUT/summary.txt"
# 10,000 live jobs (no workers: they stay idle, materialised by a removal
# of one so the cluster has records as well as fresh jobs).
printf '#!/bin/sh\ntrue\n' >"$OUT/true.sh"
chmod +x "$OUT/true.sh"
"$BIN" submit --count 10000 -- "$OUT/true.sh" >/dev/null
for i in 1 2 3; do timeit "condor_q over 10,000 live jobs beside the history (run $i)" "$CONDOR_Q" -af ClusterId ProcId; done
kill "$MASTER"
wait "$MASTER" || true

# The same condor_q on a master with no history, for comparison.
PORT2=$((PORT + 1))
"$BIN" master --journal "$OUT/fresh" --listen "127.0.0.1:$PORT2" >"$OUT/fresh.log" 2>&1 &
FRESH=$!
until "$BIN" status --master "127.0.0.1:$PORT2" >/dev/null 2>&1; do sleep 0.01; done
export PILOTQ_MASTER="127.0.0.1:$PORT2"
"$BIN" submit --count 10000 -- "$OUT/true.sh" >/dev/null
for i in 1 2 3; do timeit "condor_q over 10,000 live jobs, no history (run $i)" "$CONDOR_Q" -af ClusterId ProcId; done
kill "$FRESH"
wait "$FRESH" || true

for verb in stats plot; do
    a=$(date +%s.%N)
    if [ "$verb" = plot ]; then
        "$BIN" journal plot --journal "$J" "$OUT/soak.svg" >/dev/null
    else
        "$BIN" journal stats --journal "$J" >"$OUT/stats.txt"
    fi
    b=$(date +%s.%N)
    echo "pilotq journal $verb: $(python3 -c "print(f'{$b-$a:.2f}')") s" >>"$OUT/summary.txt"
done
cat "$OUT/summary.txt"
