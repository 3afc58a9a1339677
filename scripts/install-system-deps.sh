#!/bin/sh
# Install the Debian packages GridCase needs, if they are missing.
#   scripts/install-system-deps.sh [--browser | --bench]
# Needs: python3 with venv, Node.js + npm (front-end assets from the npm registry),
# PostgreSQL 15 + PostGIS 3 + pgRouting (unless DATABASE_URL points at a server;
# without pgRouting routes are straight lines), and with --browser (the tests) or --bench
# Debian's chromium (the browser tests drive it through Playwright) and wrk, the load
# generator of the field-report benchmark (bench/wrkgen.py; the tests check its pacing).
# As root it installs what is missing with apt-get; otherwise it says what to run.
set -eu

browser=no
bench=no
[ "${1:-}" = "--browser" ] && browser=yes && bench=yes
[ "${1:-}" = "--bench" ] && browser=yes && bench=yes
need=""

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need="$need python3 python3-venv python3-dev"
fi
if ! command -v npm >/dev/null 2>&1; then
    need="$need nodejs npm"
fi
if [ -z "${DATABASE_URL:-}" ]; then
    have_postgis=no
    # Both the extension's SQL (the -scripts package) and its library must be there.
    for lib in /usr/lib/postgresql/*/lib/postgis-3.so; do
        v=$(basename "$(dirname "$(dirname "$lib")")")
        [ -e "$lib" ] && [ -e "/usr/share/postgresql/$v/extension/postgis.control" ] && have_postgis=yes
    done
    [ "$have_postgis" = yes ] || need="$need postgresql-15 postgresql-15-postgis-3"
    # Routing along roads: the same check for pgRouting (library and control file).
    have_pgrouting=no
    for lib in /usr/lib/postgresql/*/lib/libpgrouting-*.so; do
        v=$(basename "$(dirname "$(dirname "$lib")")")
        [ -e "$lib" ] && [ -e "/usr/share/postgresql/$v/extension/pgrouting.control" ] && have_pgrouting=yes
    done
    [ "$have_pgrouting" = yes ] || need="$need postgresql-15-pgrouting"
fi
if [ "$browser" = yes ]; then
    command -v chromium >/dev/null 2>&1 || need="$need chromium"
    # Chinese glyphs in the browser tests' screenshots.
    [ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need="$need fonts-noto-cjk"
fi
if [ "$bench" = yes ]; then
    command -v wrk >/dev/null 2>&1 || need="$need wrk"
fi
command -v runuser >/dev/null 2>&1 || need="$need util-linux"

[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "缺少系统软件包 (missing Debian packages):$need" >&2
    echo "请以 root 运行 (run as root):  apt-get install -y$need" >&2
    if echo "$need" | grep -q postgis; then
        echo "或设置 DATABASE_URL 指向已有的 PostgreSQL 15 + PostGIS 3 服务器。" >&2
        echo "(or set DATABASE_URL to an existing PostgreSQL 15 + PostGIS 3 server)" >&2
    fi
    exit 1
fi

echo "正在安装系统软件包 (installing):$need"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $need; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $need
fi
