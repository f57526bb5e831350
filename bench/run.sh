#!/usr/bin/env bash
# `make bench`: builds the release binaries, starts the local stack, creates a fresh benchmark
# database, provisions and migrates it with the devstack, seeds it, runs every benchmark and
# prints one table (also written to target/bench/table.md). Figures, not tests: nothing here
# fails because a machine is slow.
#
#   BENCH_RUNS      fresh processes per cold-start target (default 20)
#   BENCH_SIZES     directory sizes for the list/search figures (default "1000 10000 100000")
#   BENCH_ARTICLE_SIZES  article counts for the content list/search figures (default
#                   "1000 100000"); the n-th is seeded alongside the n-th directory size, so by
#                   default 100 000 articles are measured with 10 000 directory users
#   BENCH_DATABASE  the database to (re)create (default lectern_bench)
#   BENCH_ARM64=1   also try `cargo lambda build --arm64` (needs the aarch64 target and zig)
#   BENCH_SKIP_BUILD=1  use the release binaries already in target/release
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
RUNS=${BENCH_RUNS:-20}
read -r -a SIZES <<<"${BENCH_SIZES:-1000 10000 100000}"
read -r -a ARTICLE_SIZES <<<"${BENCH_ARTICLE_SIZES:-1000 100000}"
DATABASE=${BENCH_DATABASE:-lectern_bench}
BIN=$ROOT/target/release

step() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }

mkdir -p "$OUT"
export BENCH_RESULTS=$OUT/results.jsonl
: >"$BENCH_RESULTS"

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  step "cargo build --release (auth, users, the bench programs and baselines)"
  cargo build --release -p lectern-auth --bin auth -p lectern-users --bin users -p lectern-content --bin content
  cargo build --release -p lectern-bench
fi

if [[ ${BENCH_ARM64:-0} == 1 ]]; then
  step "cargo lambda build --release --arm64"
  if cargo lambda build --release --arm64 --bin auth --bin users --bin content --bin bench-hello \
    >"$OUT/cargo-lambda-arm64.log" 2>&1; then
    echo "arm64 bootstraps built: target/lambda/{auth,users,content,bench-hello}/bootstrap"
    # Their sizes, and their zips' (bootstrap alone, deflated), for the table.
    for binary in bench-hello auth users content; do
      bootstrap=$ROOT/target/lambda/$binary/bootstrap
      printf '{"key":"size_bytes_arm64/%s","value":%s,"note":"arm64"}\n' "$binary" "$(stat -c %s "$bootstrap")" >>"$BENCH_RESULTS"
      if command -v zip >/dev/null; then
        rm -f "$OUT/$binary-arm64.zip"
        (cd "$(dirname "$bootstrap")" && zip -q -X "$OUT/$binary-arm64.zip" bootstrap)
        printf '{"key":"zip_bytes_arm64/%s","value":%s,"note":"arm64"}\n' "$binary" "$(stat -c %s "$OUT/$binary-arm64.zip")" >>"$BENCH_RESULTS"
      fi
    done
  else
    echo "cargo lambda build --arm64 failed (see $OUT/cargo-lambda-arm64.log); sizes below are x86_64"
  fi
fi

step "infra/local/up.sh"
infra/local/up.sh
# shellcheck disable=SC1091
. "${LECTERN_STATE_DIR:-$ROOT/.local}/env"

step "a fresh database: $DATABASE"
"$BIN/seed" --create-database "$DATABASE"
BENCH_STATE=${LECTERN_STATE_DIR:-$ROOT/.local}/bench
export BENCH_ENV_DIR=$BENCH_STATE/functions

step "provision + migrate (the devstack, stack lectern-bench)"
DATABASE_URL=${DATABASE_URL%/*}/$DATABASE LECTERN_STACK=lectern-bench \
  JWT_SIGNING_KEY_FILE=$BENCH_STATE/jwt-signing-key \
  cargo run -q -p lectern-devstack -- --provision-only

step "seed ${SIZES[0]} directory users"
"$BIN/seed" --users "${SIZES[0]}"

step "seed ${ARTICLE_SIZES[0]} articles"
"$BIN/seed" --articles "${ARTICLE_SIZES[0]}"

step "warm: round trips, throughput at concurrency 1/10/50, list/search at ${SIZES[0]} users"
RUST_LOG=${RUST_LOG:-error} LECTERN_LOG_FORMAT=pretty "$BIN/warm"

step "warm-content: round trips, throughput at concurrency 1/10/50, list/search at ${ARTICLE_SIZES[0]} articles"
RUST_LOG=${RUST_LOG:-error} LECTERN_LOG_FORMAT=pretty "$BIN/warm-content"

step "lambda-harness: cold starts ($RUNS fresh processes each), sizes, memory"
"$BIN/lambda-harness" --runs "$RUNS"

for ((i = 1; i < ${#SIZES[@]} || i < ${#ARTICLE_SIZES[@]}; i++)); do
  if [[ -n ${SIZES[i]:-} ]]; then
    step "seed ${SIZES[i]} directory users, then list/search again"
    "$BIN/seed" --users "${SIZES[i]}"
    RUST_LOG=${RUST_LOG:-error} LECTERN_LOG_FORMAT=pretty "$BIN/warm" --scale
  fi
  if [[ -n ${ARTICLE_SIZES[i]:-} ]]; then
    step "seed ${ARTICLE_SIZES[i]} articles, then content list/search again"
    "$BIN/seed" --articles "${ARTICLE_SIZES[i]}"
    RUST_LOG=${RUST_LOG:-error} LECTERN_LOG_FORMAT=pretty "$BIN/warm-content" --scale
  fi
done

step "the table ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
"$BIN/bench-report" "$BENCH_RESULTS" | tee "$OUT/table.md"
