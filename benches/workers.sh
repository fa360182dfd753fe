#!/usr/bin/env bash
# How cost grows with the number of workers: the separate-cas example plus N workers
# (ECDSA-P256), for N = 100, 1,000 and 10,000 (or the counts given as arguments). Times, with
# GNU time, `cpgen bundle` with fresh keys, again with the keys now existing, and `cpgen
# verify` of the result, each with its peak RSS. Prints a Markdown table (also written to
# target/workers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cpgen="$PWD/target/release/cpgen"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
measure() { # command... -> "seconds | peak MB"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
        cat "$work/stderr" >&2
        exit 1
    }
    awk '{ printf "%.2f s | %d MB", $1, $2 / 1024 }' "$work/time"
}
mkdir -p target
{
    echo "| workers | files | fresh keys | peak RSS | existing keys | peak RSS | \`cpgen verify\` | peak RSS |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    for count in "${@:-100 1000 10000}"; do
        for n in $count; do
            config="$work/w$n.toml"
            sed 's|host_cidrs = \["10.10.10.0/24"\]|host_cidrs = ["10.10.0.0/16"]|' \
                examples/separate-cas.toml >"$config"
            awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
                printf "[[workers]]\nname = \"node%d\"\naddress = \"10.10.%d.%d\"\n", i, 20 + int(i / 250), 1 + i % 250 }' >>"$config"
            fresh=$(measure "$cpgen" bundle "$config" -o "$work/w$n.tar.gz" --force)
            files=$(grep -o '[0-9]* files' "$work/stderr" | cut -d' ' -f1)
            existing=$(measure "$cpgen" bundle "$config" -o "$work/w$n.tar.gz" --force)
            verify=$(measure "$cpgen" verify "$work/w$n.tar.gz" --config "$config")
            echo "| $n | $files | $fresh | $existing | $verify |"
        done
    done
} | tee target/workers.md
