#!/usr/bin/env python3
"""Lists the requests a CNCF distribution registry logged (its `info` level "response completed" lines) from
line FIRST of its log on: offset from the first request's start, duration, method, path (digests shortened),
status; then the count and the sequential round trips: the longest chain of requests each starting at least
GAP_MS after the one before it ended (behind a delay proxy, a request sent on an answer reaches the registry
one round trip after that answer left; requests sent together arrive within a fraction of it).
Usage: registry-requests.py LOG FIRST_LINE [GAP_MS]"""
import re, sys
from datetime import datetime

def field(line, name):
    m = re.search(name + r'="([^"]*)"|' + name + r'=(\S+)', line)
    return (m.group(1) or m.group(2)) if m else None

def seconds(duration):
    m = re.fullmatch(r'([0-9.]+)(ns|µs|us|ms|s)', duration)
    return float(m.group(1)) * {'ns': 1e-9, 'µs': 1e-6, 'us': 1e-6, 'ms': 1e-3, 's': 1}[m.group(2)]

def when(stamp):
    stamp = re.sub(r'(\.\d{6})\d*', r'\1', stamp).replace('Z', '+00:00')
    return datetime.fromisoformat(stamp).timestamp()

gap = float(sys.argv[3]) / 1e3 if len(sys.argv) > 3 else 0.0
lines = open(sys.argv[1], errors='replace').read().splitlines()[int(sys.argv[2]):]
requests = []
for line in lines:
    if 'response completed' not in line:
        continue
    end = when(field(line, 'time'))
    took = seconds(field(line, 'http.response.duration'))
    uri = re.sub(r'sha256[:-]([0-9a-f]{8})[0-9a-f]{56}', r'sha256:\1…', field(line, 'http.request.uri'))
    uri = re.sub(r'/uploads/[0-9a-f-]{36}\?.*', '/uploads/<id>', uri)
    requests.append((end - took, end, field(line, 'http.request.method'), uri, field(line, 'http.response.status')))
if not requests:
    sys.exit('no requests logged')
requests.sort()
t0 = requests[0][0]
for start, end, method, uri, status in requests:
    print(f'  {1e3 * (start - t0):7.1f} ms +{1e3 * (end - start):5.1f} ms  {method:4} {uri} {status}')
chain = [1] * len(requests)
for i, (start, _, *_rest) in enumerate(requests):
    chain[i] = 1 + max([chain[j] for j in range(i) if requests[j][1] + gap <= start] or [0])
print(f'requests={len(requests)} sequential_round_trips={max(chain)}')
