#!/usr/bin/env bash
# Make sure PostgreSQL's server programs (initdb, pg_ctl) exist: the tests start a
# throwaway server of their own. Installs Debian's package when they are missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || command -v initdb > /dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing PostgreSQL's server programs for the tests (apt-get install postgresql)" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql-15 || $SUDO apt-get install -y -qq postgresql
