#!/usr/bin/env bash
# launch/gpu_check.sh comes back with figures whatever fails. After a dry run into OUT (the
# binaries are then built in the CUDA compat root), SLIDETRAIN_GPU_CHECK_FAIL makes cuda_vs_cpu
# fail on purpose in a run of three steps. Checks: that run exits non-zero, rebuilds nothing, the
# two steps after the failing one ran and wrote their lines (ok), the failing step's line says
# ok=false with its log's end, and the summary names it; then `--steps failed` reruns exactly the
# steps whose latest line is not ok (here cuda_vs_cpu), which pass, and exits 0.
# Run by .ci/run after `launch/gpu_check.sh --dry-run OUT` (root: it chroots into the compat root).
# Usage: tests/e2e/gpu_check_test.sh OUT
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?usage: gpu_check_test.sh OUT (after launch/gpu_check.sh --dry-run OUT)}"
J="$OUT/gpu_check.jsonl"
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f "$J" ]] || fail "$J missing: run launch/gpu_check.sh --dry-run $OUT first"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
PY=python3

before=$(wc -l < "$J")
if SLIDETRAIN_GPU_CHECK_FAIL=cuda_vs_cpu "$ROOT/launch/gpu_check.sh" --dry-run \
     --steps cuda_vs_cpu,trainer,sbn_vs_torch "$OUT" > "$W/inject.log" 2>&1; then
  cat "$W/inject.log"; fail "exit status 0 although a step failed"
fi
grep -q "the binaries exist and are up to date: nothing rebuilt" "$W/inject.log" ||
  { cat "$W/inject.log"; fail "the binaries were rebuilt"; }
grep -Eq "^cuda_vs_cpu +NO " "$W/inject.log" || { cat "$W/inject.log"; fail "the summary does not name the failed step"; }
"$PY" - "$J" "$before" <<'PY' || fail "the injected run's lines (above)"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]]
for l in lines:
    print(l["step"], l["ok"], l.get("error", [])[-1:] if not l["ok"] else l["figures"])
assert [l["step"] for l in lines] == ["cuda_vs_cpu", "trainer", "sbn_vs_torch"], [l["step"] for l in lines]
assert not lines[0]["ok"] and "SLIDETRAIN_GPU_CHECK_FAIL" in " ".join(lines[0]["error"])
assert lines[1]["ok"] and lines[2]["ok"], "the steps after the failed one must run and pass"
assert lines[1]["figures"] and lines[2]["figures"], "the later steps recorded no figures"
PY

# --steps failed: exactly the steps whose latest line is not ok, now without the injection.
expect=$("$PY" - "$J" <<'PY'
import json, sys
last = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    last[r["step"]] = r["ok"]
print(",".join(sorted(k for k, ok in last.items() if not ok)))
PY
)
[[ "$expect" == *cuda_vs_cpu* ]] || fail "cuda_vs_cpu should be among the failed steps, got '$expect'"
before=$(wc -l < "$J")
"$ROOT/launch/gpu_check.sh" --dry-run --steps failed "$OUT" > "$W/rerun.log" 2>&1 ||
  { cat "$W/rerun.log"; fail "--steps failed did not pass"; }
"$PY" - "$J" "$before" "$expect" <<'PY' || fail "the rerun's lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]]
assert sorted(l["step"] for l in lines) == sys.argv[3].split(","), ([l["step"] for l in lines], sys.argv[3])
assert all(l["ok"] for l in lines)
PY
echo "gpu_check survives a failing step and --steps failed reruns it: OK"
