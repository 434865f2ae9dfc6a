#!/usr/bin/env python3
"""Registry CPU per kind of request: sends N requests of each kind a sign makes to a registry at HOST (one
connection, in sequence) and reads the registry's CPU time (/proc/PID/stat utime + stime) around each kind.
Usage: registry-request-cost.py HOST PID [N]"""
import hashlib, http.client, json, os, sys

host, pid = sys.argv[1], int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
tick = os.sysconf('SC_CLK_TCK')
conn = http.client.HTTPConnection(host)

def cpu():
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse(); r.read(); return r

def digest(b): return 'sha256:' + hashlib.sha256(b).hexdigest()

def upload(blob):
    r = call('POST', '/v2/cost/app/blobs/uploads/')
    loc = r.getheader('Location'); loc = loc[loc.index('/v2/'):]
    sep = '&' if '?' in loc else '?'
    call('PUT', f'{loc}{sep}digest={digest(blob)}', blob, {'Content-Type': 'application/octet-stream'})

config = b'{}'; upload(config)
def manifest(i):
    layer = f'layer {i}'.encode()
    return json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
        'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': digest(config), 'size': 2},
        'layers': [{'mediaType': 'application/octet-stream', 'digest': digest(layer), 'size': len(layer)}]}).encode()

kinds = [
    ('HEAD of a missing blob', lambda i: call('HEAD', f'/v2/cost/app/blobs/{digest(f"none {i}".encode())}')),
    ('GET of a missing tag', lambda i: call('GET', f'/v2/cost/app/manifests/none-{i}')),
    ('blob upload, POST + PUT', lambda i: upload(f'layer {i}'.encode())),
    ('manifest PUT by tag', lambda i: call('PUT', f'/v2/cost/app/manifests/t{i}', manifest(i),
                                          {'Content-Type': 'application/vnd.oci.image.manifest.v1+json'})),
    ('the same manifest PUT again, by digest', lambda i: call('PUT', f'/v2/cost/app/manifests/{digest(manifest(i))}', manifest(i),
                                             {'Content-Type': 'application/vnd.oci.image.manifest.v1+json'})),
    ('GET of a tag', lambda i: call('GET', f'/v2/cost/app/manifests/t{i}',
                                    headers={'Accept': 'application/vnd.oci.image.manifest.v1+json'})),
]
for name, send in kinds:
    before = cpu()
    for i in range(n):
        send(i)
    print(f'{name}: {1e3 * (cpu() - before) / n:.2f} ms registry CPU per request ({n})')
