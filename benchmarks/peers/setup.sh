#!/usr/bin/env bash
# One virtual environment per peer library, outside the repository, with one command:
#
#     bash benchmarks/peers/setup.sh [PEER ...]      # default: every peer below
#
# Each peer gets its own venv (no system site packages, so its pins cannot clash with
# splitlab's or another peer's) under $SPLITLAB_PEERS_DIR (default /tmp/splitlab-peers):
# <dir>/<peer>/bin/python. The outcome of each install is written to <dir>/<peer>/STATUS
# ("ok <versions>" or "failed: <reason>") and the pip log to <dir>/<peer>/install.log;
# `python benchmarks/peers/run.py` reads both, runs the peers that installed and records
# why the others did not. A failed peer does not stop the others.
set -u
PYTHON=${PYTHON:-python3}
ROOT=${SPLITLAB_PEERS_DIR:-/tmp/splitlab-peers}
# peer name -> pip requirements (the peer and what its workload script imports)
declare -A REQUIREMENTS=(
  [gbstats]="gbstats numpy scipy pandas"
  [spotify-confidence]="spotify-confidence numpy scipy pandas"
  [mabwiser]="mabwiser numpy"
  [river]="river numpy"
  [vowpalwabbit]="vowpalwabbit numpy"
  [obp]="obp numpy"
)
# distribution names whose versions STATUS records
declare -A DISTRIBUTIONS=(
  [gbstats]="gbstats" [spotify-confidence]="spotify-confidence" [mabwiser]="mabwiser"
  [river]="river" [vowpalwabbit]="vowpalwabbit" [obp]="obp"
)
PEERS=("$@")
if [ ${#PEERS[@]} -eq 0 ]; then
  PEERS=(gbstats spotify-confidence mabwiser river vowpalwabbit obp)
fi
mkdir -p "$ROOT"
status=0
for peer in "${PEERS[@]}"; do
  if [ -z "${REQUIREMENTS[$peer]+x}" ]; then
    echo "unknown peer '$peer'; expected one of: ${!REQUIREMENTS[*]}" >&2
    status=2
    continue
  fi
  venv="$ROOT/$peer"
  log="$venv/install.log"
  echo "== $peer -> $venv"
  rm -rf "$venv"
  if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
    mkdir -p "$venv"
    echo "failed: python -m venv did not create the environment" > "$venv/STATUS"
    continue
  fi
  started=$(date +%s)
  # shellcheck disable=SC2086
  if "$venv/bin/python" -m pip install --disable-pip-version-check \
       ${REQUIREMENTS[$peer]} >"$log" 2>&1 \
     && "$venv/bin/python" -c "import importlib; importlib.import_module('${peer//-/_}')" >>"$log" 2>&1; then
    versions=$("$venv/bin/python" -c "
import importlib.metadata as m
print(' '.join(f'{d} {m.version(d)}' for d in '${DISTRIBUTIONS[$peer]}'.split()))")
    echo "ok $versions ($(( $(date +%s) - started )) s)" > "$venv/STATUS"
  else
    # the last package pip was collecting is the one whose build failed
    building=$(grep -E "^Collecting " "$log" | tail -n 1 | sed 's/^Collecting //')
    reason=$(grep -E "Error:|ERROR:|error:" "$log" | grep -v "subprocess-exited-with-error" \
             | tail -n 2 | tr '\n' ' ' | tr -s ' ' | cut -c1-300)
    echo "failed${building:+ while installing $building}: ${reason:-see $log}" > "$venv/STATUS"
  fi
  cat "$venv/STATUS"
done
exit $status
