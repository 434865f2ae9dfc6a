#!/usr/bin/env bash
# Register figures for docs/PERFORMANCE.md: durable appends/s (1, 64 and 256 writers) on SQLite and, when
# PG_URL is set (or PG=1: a throwaway PostgreSQL 15 cluster of its own), PostgreSQL; inclusion-proof time at 1M
# (and with TEN_MILLION=1, 10M short) entries; export MB/s and offline verification time of the 1M-entry
# export; with SEARCH=1, register search p50/p99 on a 10M-entry log of varied entries (and on PG_URL's
# database too).
#   bash scripts/bench-register.sh            # SQLite only
#   PG_URL=postgres://… bash scripts/bench-register.sh
#   SEARCH=1 PG_URL=postgres://… bash scripts/bench-register.sh
# Parts (scripts/bench-all.sh): WRITERS="256" APPEND_SECONDS=10 PROOF_ENTRIES=N PROOF_SMALL=1 EXPORT=0 PG=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
LOAD=$TARGET/release/examples/register_load
WRITERS=${WRITERS:-1 64 256}
APPEND_SECONDS=${APPEND_SECONDS:-10}
PROOF_ENTRIES=${PROOF_ENTRIES:-1000000}
if [ "${PG:-0}" = 1 ] && [ -z "${PG_URL:-}" ]; then
  start_postgres
fi
echo "## Register ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start)"

for writers in $WRITERS; do
  "$LOAD" appends --database "sqlite://$work/appends-$writers.db" --writers "$writers" --seconds "$APPEND_SECONDS" |
    sed 's/^/sqlite /'
  rm -f "$work"/appends-"$writers".db*
  if [ -n "${PG_BASE:-}" ]; then
    "$LOAD" appends --database "$(pg_database "appends_$writers")" --writers "$writers" --seconds "$APPEND_SECONDS" |
      sed 's/^/postgres /'
  elif [ -n "${PG_URL:-}" ]; then
    "$LOAD" appends --database "$PG_URL" --writers "$writers" --seconds "$APPEND_SECONDS" | sed 's/^/postgres /'
  fi
done

db="sqlite://$work/big.db"
small=(); [ "${PROOF_SMALL:-0}" = 1 ] && small=(--small) # ~30-byte entries: proofs read node hashes only
"$LOAD" fill --database "$db" --entries "$PROOF_ENTRIES" "${small[@]}" 2>/dev/null
"$LOAD" proofs --database "$db"
[ "${EXPORT:-1}" = 1 ] || exit 0

port=$(free_port)
NOTARIUM_DATABASE_URL=$db NOTARIUM_LISTEN=127.0.0.1:$port NOTARIUM_DATA_DIR=$work/data \
  "$NOTARIUM" serve 2>"$work/serve.log" & pids+=($!)
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
curl -sf "http://127.0.0.1:$port/v1/keys/dev-log/public.pem" > "$work/log.pub"
start=$(date +%s.%N)
"$NOTARIUM" log export --server "http://127.0.0.1:$port" -f "$work/export.jsonl"
end=$(date +%s.%N)
bytes=$(stat -c %s "$work/export.jsonl")
python3 -c "d=$end-$start; print(f'export: 1M entries, {$bytes/1e6:.0f} MB in {d:.1f} s = {$bytes/1e6/d:.0f} MB/s')"
start=$(date +%s.%N)
"$NOTARIUM" log verify "$work/export.jsonl" --log-key "$work/log.pub"
end=$(date +%s.%N)
python3 -c "print(f'verify: {$end-$start:.1f} s for the 1M-entry export')"

if [ "${TEN_MILLION:-0}" = 1 ]; then
  kill "${pids[-1]}"
  # Short entries: 10M sign-sized ones take ~9 GB; proofs read only node hashes.
  big="sqlite://$work/ten-million.db"
  "$LOAD" fill --database "$big" --entries 10000000 --small 2>/dev/null
  "$LOAD" proofs --database "$big"
fi

if [ "${SEARCH:-0}" = 1 ]; then
  # ~740 bytes a varied entry on SQLite with its index rows (7.4 GB), ~1.2 KB on PostgreSQL: one at a time.
  searched="sqlite://$work/search.db"
  "$LOAD" fill --database "$searched" --entries 10000000 --varied 2>/dev/null
  "$LOAD" search --database "$searched" --samples 200 | sed 's/^/sqlite /'
  rm -f "$work"/search.db*
  if [ -n "${PG_URL:-}" ]; then
    "$LOAD" fill --database "$PG_URL" --entries 10000000 --varied 2>/dev/null
    "$LOAD" search --database "$PG_URL" --samples 200 | sed 's/^/postgres /'
  fi
fi
