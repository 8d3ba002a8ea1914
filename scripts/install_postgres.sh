#!/usr/bin/env bash
# Install Debian's PostgreSQL server (package `postgresql`) unless its binaries are already there, and print
# the bin dir (/usr/lib/postgresql/<version>/bin) on stdout -- the only thing printed there; progress goes to
# stderr. Idempotent: a second run finds the binaries and installs nothing.
#
# The package's own "main" cluster is not wanted (tests and CI start throwaway servers of their own on free
# ports), so create_main_cluster is turned off in postgresql-common before the server package is installed:
# nothing is left running on 5432 after the install.
set -euo pipefail

find_bin_dir() {
    local dir
    while read -r dir; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r)
    return 1
}

if bin_dir=$(find_bin_dir); then
    echo "$bin_dir"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install_postgres.sh: PostgreSQL is not installed and this needs root (apt-get)" >&2
        exit 1
    fi
else
    SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_postgres.sh: installing Debian's postgresql package" >&2
"${SUDO[@]}" apt-get update -q >&2
"${SUDO[@]}" apt-get install -y -q postgresql-common >&2
conf=/etc/postgresql-common/createcluster.conf
if [[ -f $conf ]]; then
    "${SUDO[@]}" sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
fi
"${SUDO[@]}" apt-get install -y -q postgresql >&2

if bin_dir=$(find_bin_dir); then
    echo "$bin_dir"
else
    echo "install_postgres.sh: postgresql installed but no /usr/lib/postgresql/*/bin with initdb and pg_ctl" >&2
    exit 1
fi
