#!/usr/bin/env bash
# Times, side by side in one hyperfine run, the guide's PKI made by the cfssl workflow, by the
# plain openssl workflow, and by `cpgen bundle` (fresh RSA-2048 secrets, fresh ECDSA-P256
# secrets, and a re-render with existing secrets). Installs hyperfine and golang-cfssl when
# missing. Prints a Markdown table (also written to target/compare.md), then holds the fresh
# RSA-2048 run against the key-generation floor: keys x one key's time (criterion, same
# aws-lc code) / cores.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v cfssl >/dev/null || need+=(golang-cfssl)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp examples/seed-ha.toml "$work/rsa.toml"
sed 's/key_algorithm = "rsa-2048"/key_algorithm = "ecdsa-p256"/' examples/seed-ha.toml > "$work/ecdsa.toml"
cp examples/seed-ha.toml "$work/existing.toml"
cpgen="$PWD/target/release/cpgen"
"$cpgen" bundle "$work/existing.toml" -o "$work/existing.tar.gz" --force 2>/dev/null
mkdir -p target
# One --prepare per command, in order: only the fresh-secrets runs start without secrets.
hyperfine --warmup 2 --runs "${RUNS:-10}" --export-markdown target/compare.md \
    --export-json target/compare.json \
    --prepare true --prepare true \
    --prepare "rm -f $work/rsa.secrets.toml" --prepare "rm -f $work/ecdsa.secrets.toml" --prepare true \
    -n "cfssl workflow (1 CA + 10 identities, RSA-2048)" "bash benches/workflows/cfssl.sh $work/cfssl" \
    -n "openssl workflow (1 CA + 10 identities, RSA-2048)" "bash benches/workflows/openssl.sh $work/openssl" \
    -n "cpgen bundle, fresh secrets, RSA-2048 (1 CA + 14 identities + SA key)" "$cpgen bundle $work/rsa.toml -o $work/rsa.tar.gz --force" \
    -n "cpgen bundle, fresh secrets, ECDSA-P256" "$cpgen bundle $work/ecdsa.toml -o $work/ecdsa.tar.gz --force" \
    -n "cpgen bundle, existing secrets (re-render)" "$cpgen bundle $work/existing.toml -o $work/existing.tar.gz --force"
cat target/compare.md
keys=$(grep -c "BEGIN PRIVATE KEY" "$work/rsa.secrets.toml")
cargo bench --quiet --bench pki -- keygen/rsa-2048 >/dev/null
key_ns=$(jq '.mean.point_estimate' target/criterion/keygen/rsa-2048/new/estimates.json)
fresh_s=$(jq '.results[2].mean' target/compare.json)
cores=$(nproc)
awk -v keys="$keys" -v key_ns="$key_ns" -v fresh="$fresh_s" -v cores="$cores" 'BEGIN {
    key = key_ns / 1e9; floor = keys * key / cores
    printf "\nRSA-2048 key generation floor: %d keys x %.1f ms / %d cores = %.3f s\n", keys, key * 1000, cores, floor
    printf "cpgen bundle, fresh secrets, RSA-2048: %.3f s = %.2fx the floor (target: at most 1.2x)\n", fresh, fresh / floor
}' | tee -a target/compare.md
