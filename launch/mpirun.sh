#!/usr/bin/env bash
# Runs slidetrain on N local ranks: launch/mpirun.sh N <slidetrain args...>
#   e.g. launch/mpirun.sh 2 train -c configs/demo.yaml train.epochs=5
# On a cluster use your site's mpirun/srun directly (see docs/cluster.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 2 ]]; then
  echo "usage: launch/mpirun.sh N <slidetrain command> [args...]" >&2
  exit 2
fi
NP="$1"; shift
if ! command -v mpirun >/dev/null 2>&1; then
  echo "slidetrain: error: 'mpirun' not found on PATH (install openmpi-bin, or load your MPI module)" >&2
  exit 1
fi
BIN="${SLIDETRAIN_BIN:-$ROOT/build/slidetrain}"
# Installed (cmake --install): this script lives in share/slidetrain/launch; use the slidetrain on PATH.
if [[ -z "${SLIDETRAIN_BIN:-}" && ! -x "$BIN" ]] && command -v slidetrain >/dev/null 2>&1; then
  BIN="$(command -v slidetrain)"
fi
if [[ ! -x "$BIN" ]]; then
  echo "slidetrain: error: '$BIN' not built (run launch/setup.sh)" >&2
  exit 1
fi
# OpenMPI refuses root without these; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun -np "$NP" --oversubscribe --bind-to none "$BIN" "$@"
