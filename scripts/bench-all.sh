#!/usr/bin/env bash
# Every figure of issue 19 in one table (figure, target, measured), so the next person can compare: sign
# throughput and latency (scripts/bench.sh, API part), batch signing (scripts/bench-batch.sh), the registry's
# CPU per sign next to per push, notarium's CPU per sign and the requests of one sign
# (scripts/bench-sign-registry.sh), verify cold and
# warm (scripts/bench-verify.sh), durable register appends on SQLite and on a throwaway PostgreSQL 15 with 256
# writers and inclusion proofs at PROOF_ENTRIES entries (scripts/bench-register.sh), peak RSS with IN_FLIGHT
# verifies at once (scripts/bench-memory.sh), and sign latency with 20 ms between notarium and the registry
# (scripts/bench-rtt.sh, when present). Each script builds the release binaries it needs (into
# CARGO_TARGET_DIR, or target/) and installs nothing beyond scripts/install-test-deps.sh. Every script's own
# output is kept under $BENCH_OUT (default: a new temporary folder), named in the last line.
# Usage: scripts/bench-all.sh [PROOF_ENTRIES] [IMAGES] [IN_FLIGHT] [APPEND_SECONDS]
#   scripts/bench-all.sh                  # the issue's sizes: 10M entries, 300 images, 1,000 in flight, 10 s
#   scripts/bench-all.sh 20000 20 50 2    # a quick check that everything runs
set -euo pipefail
cd "$(dirname "$0")/.."
PROOF_ENTRIES=${1:-10000000}
IMAGES=${2:-300}
IN_FLIGHT=${3:-1000}
APPEND_SECONDS=${4:-10}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

run() { # name, then the command; its output goes to $out/name.txt
  local name=$1; shift
  echo "bench-all: $name ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  if ! "$@" > "$out/$name.txt" 2> "$out/$name.err"; then
    echo "bench-all: $name failed:" >&2
    tail -n 20 "$out/$name.err" "$out/$name.txt" >&2
    exit 1
  fi
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run sign env API_ONLY=1 bash scripts/bench.sh "$IMAGES"
run batch bash scripts/bench-batch.sh 20 3
run registry-work bash scripts/bench-sign-registry.sh "$(( (IMAGES + 1) / 2 ))"
run verify bash scripts/bench-verify.sh "$IMAGES"
run register env WRITERS=256 APPEND_SECONDS="$APPEND_SECONDS" PROOF_ENTRIES="$PROOF_ENTRIES" PROOF_SMALL=1 \
  EXPORT=0 PG=1 bash scripts/bench-register.sh
run memory bash scripts/bench-memory.sh "$IN_FLIGHT"
if [ -f scripts/bench-rtt.sh ]; then
  run rtt bash scripts/bench-rtt.sh "$IMAGES"
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$load_start" "$load_end" "$IMAGES" "$PROOF_ENTRIES" "$IN_FLIGHT" <<'PY'
import os, re, sys

out, load_start, load_end, images, entries, in_flight = sys.argv[1:]

def lines(name):
    path = os.path.join(out, name + ".txt")
    return open(path).read().splitlines() if os.path.exists(path) else []

def field(line, name):
    m = re.search(rf"\b{name}=([0-9.]+)", line)
    return float(m.group(1)) if m else None

def load_line(name, pred):
    return next((l for l in lines(name) if pred(l)), None)

rows = []
def row(figure, target, measured):
    rows.append((figure, target, measured if measured is not None else "not measured"))

for c in ("1", "8"):
    l = load_line("sign", lambda l: l.startswith("signs=") and f"concurrency={c} " in l and "dev-ecdsa" in l)
    row(f"sign, {c} client(s), both layouts (dev-ecdsa), loopback",
        "≥ 90% of the registry-bound ceiling at 8" if c == "8" else "",
        l and f"{field(l, 'throughput'):,.1f}/s, p50 {field(l, 'p50')} ms, p99 {field(l, 'p99')} ms")

batch = load_line("batch", lambda l: "requests=1 " in l)
single = [l for l in lines("batch") if l.startswith("signs=") and "requests=1 " not in l and "concurrency=8" in l]
row("batch sign, 20 images in one request", "one group commit for the batch",
    batch and f"{field(batch, 'elapsed')} s ({field(batch, 'throughput'):,.1f}/s; single calls at 8 clients: "
    f"{field(single[-1], 'throughput'):,.1f}/s)" if single else batch and f"{field(batch, 'elapsed')} s")

cpu = [(l.split(":")[0].split()[1], float(re.search(r"([0-9.]+) ms per item", l).group(1)))
       for l in lines("registry-work") if l.startswith("registry_cpu ")]
for clients, (push, sign) in zip(("1", "8"), zip(cpu[0::2], cpu[1::2])):
    row(f"registry CPU per sign / per push, {clients} client(s)", "≤ 3×",
        f"{sign[1]:.1f} / {push[1]:.1f} ms = {sign[1] / push[1]:.1f}×")
# The sequential round trips are counted where a round trip is 20 ms (bench-rtt.sh): on loopback they blur.
notarium_cpu = [float(re.search(r"([0-9.]+) ms per item", l).group(1))
                for l in lines("registry-work") if l.startswith("notarium_cpu ")]
for clients, spent in zip(("1", "8"), notarium_cpu):
    row(f"notarium CPU per sign, {clients} client(s)", "≤ 2 ms", f"{spent:.2f} ms")
requests = load_line("rtt", lambda l: l.startswith("requests=")) or load_line("registry-work", lambda l: l.startswith("requests="))
row("registry requests per sign (sequential round trips at 20 ms RTT)", "≤ 6 sequential",
    requests and f"{field(requests, 'requests'):.0f} ({field(requests, 'sequential_round_trips'):.0f})")

targets = {("cold", "1"): ("p99", "p99 ≤ 20 ms"), ("cold", "8"): ("p99", "p99 ≤ 60 ms"),
           ("warm", "1"): ("p99", "p99 ≤ 2 ms"), ("warm", "8"): ("throughput", "≥ 5,000/s")}
for (kind, c), (_, target) in targets.items():
    l = load_line("verify", lambda l: f"({kind})" in l and f"concurrency={c} " in l)
    row(f"verify {kind}, {c} client(s)", target,
        l and f"{field(l, 'throughput'):,.1f}/s, p50 {field(l, 'p50')} ms, p99 {field(l, 'p99')} ms")
trips = load_line("verify", lambda l: l.startswith("round trips per cold verify"))
row("registry round trips per cold verify", "", trips and trips.split(":")[1].strip())

for db, target in (("sqlite", "≥ 50,000/s"), ("postgres", "≥ 20,000/s")):
    l = load_line("register", lambda l: l.startswith(f"{db} appends: 256 writers"))
    m = l and re.search(r"= ([0-9]+)/s( \(([0-9.]+) per group commit\))?", l)
    row(f"durable register appends, {db}, 256 writers", target,
        m and f"{int(m.group(1)):,}/s" + (f" ({m.group(3)} per group commit)" if m.group(3) else ""))
proofs = load_line("register", lambda l: l.startswith("proofs: tree size"))
m = proofs and re.search(r"tree size ([0-9]+).*p50 ([0-9]+) µs, p99 ([0-9]+) µs", proofs)
row(f"inclusion proof, SQLite, {int(entries):,} entries", "p99 ≤ 1 ms (at 10M)",
    m and f"p50 {int(m.group(2)) / 1000:.2f} ms, p99 {int(m.group(3)) / 1000:.2f} ms at {int(m.group(1)):,}")

peak = load_line("memory", lambda l: "peak VmHWM" in l)
m = peak and re.search(r"peak VmHWM ([0-9]+) kB", peak)
row(f"peak RSS, {int(in_flight):,} verifies in flight", "≤ 100 MB", m and f"{int(m.group(1)) / 1000:.1f} MB")

for l in lines("rtt"):
    if "p50=" in l:
        row(f"sign at 20 ms RTT, 1 client ({l.split()[0]})", "p50 ≤ 150 ms",
            f"{field(l, 'throughput'):,.1f}/s, p50 {field(l, 'p50')} ms, p99 {field(l, 'p99')} ms")
if not lines("rtt"):
    row("sign at 20 ms RTT", "p50 ≤ 150 ms", "no scripts/bench-rtt.sh here")

width = [max(len(r[i]) for r in rows + [("figure", "target", "measured")]) for i in range(3)]
print(f"# Issue 19 figures ({os.cpu_count()} cores, {images} images, load average {load_start} at the start, "
      f"{load_end} at the end)")
for r in [("figure", "target", "measured"), tuple("-" * w for w in width)] + rows:
    print("| " + " | ".join(v.ljust(w) for v, w in zip(r, width)) + " |")
PY
echo "every script's output: $out"
