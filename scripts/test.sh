#!/usr/bin/env bash
# Run Conveyor's checks: ruff, then pytest on real PostgreSQL and Redis with real workers
# (and the embedded-default subset). Creates .venv and starts the local PostgreSQL and Redis
# if they are installed but not running. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

# The tests run the real ffmpeg, espeak-ng, pdftotext, tesseract (the media probes' OCR),
# WeasyPrint's libraries and Chromium (the dashboard's browser tests): install them when
# missing and we may.
missing=()
for tool in ffmpeg espeak-ng pdftotext:poppler-utils chromium tesseract:tesseract-ocr; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
for package in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || {
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }
  else
    echo "the tests need: ${missing[*]} (apt install ${missing[*]})" >&2
    exit 1
  fi
fi

# PostgreSQL and Redis on 127.0.0.1, as the tests expect; start them if they are only stopped.
# (Not needed for `--backend embedded`, which runs on SQLite and the filesystem broker.)
case " $* " in *" --backend embedded "*|*" --backend=embedded "*) embedded_only=1 ;; *) embedded_only=0 ;; esac
if [ "$embedded_only" = 0 ] && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    version=$(ls /etc/postgresql | sort -n | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable at 127.0.0.1:5432" >&2; exit 1; }
fi
if [ "$embedded_only" = 0 ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not reachable at 127.0.0.1:6379" >&2; exit 1; }
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .

# Two test processes by default (CONVEYOR_TEST_PROCESSES; 1 runs in this one): most tests wait
# on workers and servers, so two share two cores well. Each file runs whole in one process, so
# a module's fixtures are built once. Each process has its own database and Redis db.
processes=${CONVEYOR_TEST_PROCESSES:-2}
parallel=()
if [ "$processes" -gt 1 ]; then
  parallel=(-n "$processes" --dist loadfile)
fi

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
set +e
.venv/bin/python -m pytest "${parallel[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest ran no test" >&2
  exit 1
fi
exit "$status"
