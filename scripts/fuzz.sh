#!/usr/bin/env bash
# Builds and runs every fuzz target (fuzz/) for SECONDS each (default 600), seeded from the
# committed corpus in fuzz/corpus/<target>; prints per target the executions, the corpus size
# and the crashes, and exits non-zero if any target crashed. docs/security.md § Fuzzing.
#
# Works on the stable toolchain: `--sanitizer none` keeps cargo fuzz from passing
# `-Zsanitizer=address` (nightly only). Our crates forbid `unsafe`, so what fuzzing finds here
# are panics and broken invariants (assertions in the targets), which need no sanitizer.
# Environment: FUZZ_SANITIZER (default none), FUZZ_TARGET_DIR (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }

# Pinned, so every run's figures come from the same harness; `cargo install` is skipped when
# this version is already there (no index update, so offline once installed).
cargo_fuzz_version=0.13.2
targets=(api_key credential_headers permission json_bodies)
# FUZZ_SANITIZER=address adds AddressSanitizer, for the unsafe code in dependencies: stable
# rustc ships its runtime but takes `-Zsanitizer` only with RUSTC_BOOTSTRAP=1 (runs are slower).
sanitizer="${FUZZ_SANITIZER:-none}"
[[ "$sanitizer" == none ]] || export RUSTC_BOOTSTRAP=1
# 16 codegen units: cargo fuzz defaults to 1, which makes the (instrumented, release) build of
# the server's dependency tree several times slower for a few per cent of executions.
flags=(--sanitizer "$sanitizer" --codegen-units 16)
# FUZZ_TARGET_DIR: build elsewhere (CI keeps the build outside its fresh clone, to reuse it).
if [[ -n "${FUZZ_TARGET_DIR:-}" ]]; then
  flags+=(--target-dir "$FUZZ_TARGET_DIR")
fi

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

echo "==> building fuzz targets ($(rustc --version))"
cargo fuzz build "${flags[@]}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
report=()
failed=0
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus (ignored by git) that later runs start from too; the
  # committed seeds stay as they are.
  run_corpus="fuzz/corpus-run/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$run_corpus" "$artifacts"
  before="$(find "$artifacts" -type f | wc -l)"
  dict=()
  [[ -f "fuzz/dict/$t.dict" ]] && dict=("-dict=fuzz/dict/$t.dict")
  echo "==> fuzzing $t for ${seconds}s"
  rc=0
  # -timeout: an input taking 10 s is a hang worth reporting (libFuzzer's default is 20 min).
  cargo fuzz run "${flags[@]}" "$t" "$run_corpus" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1 "${dict[@]}" \
    >"$logs/$t.log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n1)"
  # No status line at all when a seed itself crashes.
  corpus="$( (grep -o 'corp: [0-9]*' "$logs/$t.log" || true) | tail -n1 | cut -d' ' -f2)"
  crashes=$(($(find "$artifacts" -type f | wc -l) - before))
  if ((rc != 0 || crashes > 0)); then
    failed=1
    # A failure with no artifact (a build or harness error) still counts.
    ((crashes > 0)) || crashes="? (exit $rc)"
    grep -E -A15 'panicked|ERROR: libFuzzer|^error' "$logs/$t.log" | head -n 40 || tail -n 40 "$logs/$t.log"
    find "$artifacts" -type f -newer "$logs" | sed 's/^/    artifact: /'
  fi
  report+=("$(printf '%-20s executions %-12s corpus %-7s crashes %s' "$t" "${execs:-?}" "${corpus:-?}" "$crashes")")
done

echo
echo "==> fuzzing summary (${seconds}s per target)"
printf '%s\n' "${report[@]}"
if ((failed)); then
  echo "a fuzz target crashed: minimise with 'cargo fuzz tmin ${flags[*]} TARGET ARTIFACT'" >&2
  exit 1
fi
