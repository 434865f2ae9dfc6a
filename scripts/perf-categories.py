"""Reads `perf script` output (with call graphs) from stdin and prints the share of samples per category: each
sample goes to the first category (in this order) whose pattern matches one of its frames. `-v` also lists the
leaf symbols of the samples left in "other". Used by scripts/perf-sign.sh (docs/PERFORMANCE.md)."""
import sys, re, collections
CATS = [
 ("sqlite (sqlx worker thread)", [r"sqlx_sqlite", r"sqlite3", r"^sqlx-sqlite"]),
 ("ECDSA P-256 sign/verify", [r"FileSigner", r"p256::", r"ecdsa::", r"primeorder", r"elliptic_curve"]),
 ("Ed25519 (checkpoint)", [r"ed25519", r"curve25519"]),
 ("checkpoint/register (service)", [r"register::", r"checkpoint", r"merkle"]),
 ("sqlx pool/runtime side", [r"sqlx_core", r"sqlx::", r"flume"]),
 ("tracing, format!", [r"tracing", r"fmt::format"]),
 ("registry client (reqwest/hyper client)", [r"reqwest", r"hyper::client", r"hyper_util::client", r"DistributionRegistry", r"oci::"]),
 ("API server (hyper server/axum)", [r"hyper::server", r"axum", r"hyper::proto::h1::dispatch::Server", r"api::"]),
 ("json (serde_json)", [r"serde_json"]),
 ("sha256", [r"sha2::"]),
 ("tokio park/epoll/timers/wakeups", [r"park", r"epoll_wait", r"Driver::turn", r"time::Driver", r"futex", r"wake"]),
]
comp = [(n, [re.compile(p) for p in ps]) for n, ps in CATS]
counts = collections.Counter(); total = 0
leaf = collections.Counter()
def flush(header, frames):
    global total
    if header is None: return
    total += 1
    text = [header] + frames
    for n, ps in comp:
        if any(p.search(f) for f in text for p in ps):
            counts[n] += 1; break
    else:
        counts["other"] += 1
        if frames: leaf[frames[0]] += 1
header, frames = None, []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        flush(header, frames); header, frames = None, []; continue
    if not line.startswith(("\t", " ")):
        flush(header, frames); header, frames = line, []
    else:
        parts = line.strip().split(" ", 1)
        frames.append(parts[1] if len(parts) > 1 else parts[0])
flush(header, frames)
for n, c in counts.most_common():
    print(f"{100*c/total:6.1f}%  {n}")
print(f"samples {total}")
if "-v" in sys.argv:
    for f, c in leaf.most_common(25): print(c, f[:150])
