#!/bin/sh
# The container's entrypoint: bring the database to the current schema, make sure the server is
# not open to its network, then run the command (`labledger serve` by default).
#
# On the first start against an empty database (or one whose tokens were all revoked) an admin
# token is created and its secret printed to the log, once: read it with
# `docker compose logs labledger`. Set LABLEDGER_NO_FIRST_TOKEN=1 to skip this (for example
# when EXPERIMENT_TRUSTED_NETWORKS lets a lab subnet in without tokens).
set -eu

if [ "${1:-}" = "labledger" ] && [ "${2:-}" = "serve" ]; then
    if ! labledger db check >/dev/null 2>&1; then
        echo "labledger: migrating the database to the current schema (backed up first)"
        labledger db upgrade
    fi
    if [ "${LABLEDGER_NO_FIRST_TOKEN:-0}" != "1" ] &&
        labledger token list --active | grep -q '^No tokens'; then
        name="admin-$(date -u +%Y%m%dT%H%M%SZ)"
        echo "================================================================================"
        echo "labledger: no API token exists, so one was made for you. Keep its secret:"
        labledger token create "$name" --scope admin --note "made on the container's first start" 2>/dev/null
        echo "Clients: 'Authorization: Bearer <secret>'; MADSci: http://token:<secret>@host:8002/"
        echo "It is not shown again. Make more with: docker compose exec labledger labledger token create NAME --scope write"
        echo "================================================================================"
    fi
fi
exec "$@"
