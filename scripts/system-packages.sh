#!/bin/sh
# Installs the Debian packages that pip cannot bring, for `make test` (and `.ci/run`).
# Each missing package is named with why it is needed; as root they are installed with
# apt-get, otherwise this prints the apt-get line to run and exits non-zero.
# GRIDATLAS_TEST_STORES=sqlite runs the suite without PostgreSQL, so it is not asked for then.
set -eu

PG_VERSION=15
missing=""
why=""

need() {  # need PACKAGE REASON: note PACKAGE as missing, with the reason it is needed
  missing="$missing $1"
  why="$why
  $1: $2"
}

[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] ||
  need chromium "the browser tests drive Debian's Chromium through Playwright"
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" ||
  need fonts-noto-cjk "Chinese text in the browser tests' pages and screenshots"
case ",${GRIDATLAS_TEST_STORES:-sqlite,postgis}," in
  *,postgis,*)
    if [ -z "${GRIDATLAS_TEST_DATABASE_URL:-}" ]; then
      [ -x "/usr/lib/postgresql/$PG_VERSION/bin/initdb" ] ||
        need "postgresql-$PG_VERSION" "the suite's PostGIS half starts a throw-away PostgreSQL cluster"
      [ -f "/usr/share/postgresql/$PG_VERSION/extension/postgis.control" ] ||
        need "postgresql-$PG_VERSION-postgis-3" "the PostGIS extension of that cluster"
    fi ;;
esac

[ -z "$missing" ] && exit 0
line="apt-get install -y$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the test suite needs Debian packages that are not installed:$why" >&2
  echo "Install them as root with:  $line" >&2
  echo "(GRIDATLAS_TEST_STORES=sqlite runs the SQLite half alone, without PostgreSQL.)" >&2
  exit 1
fi
echo "installing with apt-get:$why"
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
