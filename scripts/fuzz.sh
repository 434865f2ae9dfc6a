#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser (the cargo-fuzz crate in fuzz/, libFuzzer, nightly Rust).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 s, every target)
#
# Installs what it needs when missing (the nightly toolchain through rustup, cargo-fuzz at a pinned
# version into ~/.cargo/bin), seeds each target's corpus (fuzz/corpus/<target>/, kept between runs and
# not committed) from the third-party bytes the tests hold and from fuzz/seeds/<target>/, builds every
# target once, then runs each for SECONDS_PER_TARGET. Prints one line per target (executions, exec/s,
# coverage, corpus size, peak RSS, findings) and exits non-zero when any target found a crash, a broken
# invariant (a failed assertion is a crash), a timeout or an out-of-memory; the inputs are kept under
# fuzz/artifacts/<target>/. Environment: FUZZ_RSS_LIMIT_MB (2048), FUZZ_TIMEOUT_SECS (10, per input),
# FUZZ_SANITIZER (none; `address` runs under ASan, about twice as slow).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-60}
shift || true
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-2048}
timeout_secs=${FUZZ_TIMEOUT_SECS:-10}
sanitizer=${FUZZ_SANITIZER:-none}
third_party=tests/fixtures/third-party

install_tools() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal
    fi
    if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    fi
}

all_targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^notarium-fuzz$'
}

# seed TARGET FILE...: copies FILEs into the target's corpus (libFuzzer names what it adds by content hash).
seed() {
    local target=$1 file
    shift
    mkdir -p "fuzz/corpus/$target"
    for file in "$@"; do
        cp "$file" "fuzz/corpus/$target/seed-$(basename "$(dirname "$file")")-$(basename "$file")"
    done
}

seed_corpora() {
    local target dir
    for target in $(all_targets); do
        mkdir -p "fuzz/corpus/$target"
        if [ -d "fuzz/seeds/$target" ]; then
            seed "$target" fuzz/seeds/"$target"/*
        fi
    done
    seed reference "$third_party"/*/image-digest.txt
    seed signature_manifest "$third_party"/*/sig-manifest.json "$third_party"/cosign-2.5/att-manifest.json \
        "$third_party"/cosign-2.5/referrer-bundle-manifest.json
    seed referrer "$third_party"/cosign-2.5/referrers-fallback-index.json \
        "$third_party"/cosign-2.5/referrer-bundle-manifest.json
    seed simple_signing "$third_party"/*/simplesigning-payload.json
    seed dsse "$third_party"/cosign-2.5/att-dsse-envelope.json
    seed bundle "$third_party"/cosign-2.5/referrer-bundle.sigstore.json
    seed policy policies/*.yaml
    seed config notarium.example.toml deploy/systemd/notarium.toml deploy/kubernetes/base/notarium.toml
    seed export_verify "$third_party"/cosign-2.5/att-manifest.json
    # image_index reads its first byte as the media type it was served under (0: OCI index).
    for dir in cosign-2.5; do
        { printf '\0'; cat "$third_party/$dir/referrers-fallback-index.json"; } \
            >"fuzz/corpus/image_index/seed-$dir-referrers-fallback-index.json"
    done
    # Sigstore: trusted roots, every conformance bundle, and the certificates in them framed for
    # certificate_chain (a count of intermediates, then each DER with a 2-byte big-endian length).
    local conformance="$third_party/sigstore-conformance"
    # Notary envelopes: a selector byte (0: JWS, 1: COSE) before each envelope notation 1.3.2 made.
    local notation="$third_party/notation-1.3" envelope
    mkdir -p fuzz/corpus/notary_envelope
    for envelope in "$notation"/*.jws "$notation"/*.cose; do
        { [[ "$envelope" == *.cose ]] && printf '\x01' || printf '\x00'; cat "$envelope"; } \
            >"fuzz/corpus/notary_envelope/seed-$(basename "$envelope")"
    done
    seed trusted_root "$conformance"/*-trusted_root.json "$conformance"/bundle-verify/*/trusted_root.json
    seed sigstore_bundle "$conformance"/bundle-verify/*/bundle.sigstore.json \
        "$third_party"/cosign-2.5/referrer-bundle.sigstore.json
    python3 - "$conformance"/bundle-verify/*/bundle.sigstore.json <<'PY'
import base64, json, os, struct, sys
for path in sys.argv[1:]:
    try:
        material = json.load(open(path))["verificationMaterial"]
    except (ValueError, KeyError):
        continue
    chain = material.get("x509CertificateChain", {}).get("certificates") or [material.get("certificate")]
    ders = [base64.b64decode(c["rawBytes"]) for c in chain if c and "rawBytes" in c]
    if ders:
        framed = bytes([len(ders) - 1]) + b"".join(struct.pack(">H", len(d)) + d for d in ders)
        name = os.path.basename(os.path.dirname(path))
        open(f"fuzz/corpus/certificate_chain/seed-{name}.bin", "wb").write(framed)
PY
    # The in-toto Statement inside cosign's attestation envelope.
    python3 -c 'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))' \
        "$third_party/cosign-2.5/att-dsse-envelope.json" >fuzz/corpus/in_toto/seed-cosign-2.5-statement.json
}

# run_target TARGET: fuzzes it for $seconds and prints its line; returns non-zero on a finding.
run_target() {
    local target=$1 log status=0 execs rate cov ft corpus rss findings
    log=$(mktemp)
    mkdir -p "fuzz/artifacts/$target"
    local before
    before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    cargo +nightly fuzz run -s "$sanitizer" -a "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_secs" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    findings=$(( $(find "fuzz/artifacts/$target" -type f | wc -l) - before ))
    printf '%-20s %12s execs %8s exec/s  cov: %-6s ft: %-7s corpus: %-6s peak rss: %5s MB  findings: %s\n' \
        "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${rss:-?}" "$findings"
    if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
        echo "---- $target failed (exit $status); the end of its log:"
        grep -v '^#[0-9]' "$log" | grep -m1 -A16 -E 'panicked|ERROR: libFuzzer|out-of-memory|timeout' || tail -20 "$log"
        ls -t "fuzz/artifacts/$target" | head -5 | sed "s|^|  fuzz/artifacts/$target/|"
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

install_tools
seed_corpora
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(all_targets)
fi
started=$(date +%s)
cargo +nightly fuzz build -s "$sanitizer" -a
echo "notarium: fuzz targets built in $(( $(date +%s) - started ))s; ${seconds}s per target"
failed=()
for target in "${targets[@]}"; do
    run_target "$target" || failed+=("$target")
done
echo "notarium: fuzzing took $(( $(date +%s) - started ))s; ${#targets[@]} targets, ${#failed[@]} with findings${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
