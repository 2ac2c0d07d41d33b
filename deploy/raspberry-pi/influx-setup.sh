#!/usr/bin/env bash
# The gateway's InfluxDB 1.x database and its default retention policy, idempotently:
#
#   influx-setup.sh URL DATABASE DAYS     e.g. influx-setup.sh http://127.0.0.1:8086 facility 400
#
# Creates DATABASE with a default retention policy of DAYS days (0: keep forever) if it does
# not exist; if it exists and its default policy keeps another duration, alters that policy.
# Waits up to 60 s for InfluxDB to answer /ping. install.sh runs it; it is safe to run again.
set -euo pipefail

die() {
    printf 'influx-setup.sh: error: %s\n' "$*" >&2
    exit 1
}

[ $# -eq 3 ] || die "usage: influx-setup.sh URL DATABASE DAYS"
url=${1%/}
db=$2
days=$3
[[ $db =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad database name '$db'"
[[ $days =~ ^[0-9]+$ ]] || die "DAYS must be a whole number of days (0: forever)"
command -v curl >/dev/null || die "curl is missing: apt-get install curl"

if [ "$days" -eq 0 ]; then
    duration=INF
    shown=0s # how SHOW RETENTION POLICIES writes it
else
    duration=${days}d
    shown=$((days * 24))h0m0s
fi

# One InfluxQL statement; its answer as CSV (a header line, then one line per row).
query() {
    local out
    out=$(curl -fsS --max-time 30 -XPOST "$url/query" -H 'Accept: application/csv' --data-urlencode "q=$1") ||
        die "InfluxDB at $url refused: $1"
    case $out in
        error*) die "InfluxDB at $url: $1: ${out#error}" ;;
    esac
    printf '%s\n' "$out"
}

for _ in $(seq 120); do
    curl -fsS --max-time 2 -o /dev/null "$url/ping" 2>/dev/null && break
    sleep 0.5
done
curl -fsS --max-time 2 -o /dev/null "$url/ping" || die "InfluxDB does not answer at $url/ping"

if ! query "SHOW DATABASES" | awk -F, -v db="$db" 'NR > 1 && $3 == db { found = 1 } END { exit !found }'; then
    query "CREATE DATABASE \"$db\" WITH DURATION $duration NAME \"autogen\"" >/dev/null
    printf 'influx-setup.sh: created database %s (retention %s)\n' "$db" "$duration"
    exit 0
fi

# Columns: name, tags, name, duration, shardGroupDuration, replicaN, default
read -r rp current < <(query "SHOW RETENTION POLICIES ON \"$db\"" | awk -F, 'NR > 1 && $7 == "true" { print $3, $4 }') ||
    true
if [ -z "${rp:-}" ]; then
    query "CREATE RETENTION POLICY \"autogen\" ON \"$db\" DURATION $duration REPLICATION 1 DEFAULT" >/dev/null
    printf 'influx-setup.sh: database %s: made retention policy autogen (%s) its default\n' "$db" "$duration"
elif [ "$current" != "$shown" ]; then
    query "ALTER RETENTION POLICY \"$rp\" ON \"$db\" DURATION $duration DEFAULT" >/dev/null
    printf 'influx-setup.sh: database %s: retention policy %s changed from %s to %s\n' "$db" "$rp" "$current" "$duration"
else
    printf 'influx-setup.sh: database %s exists, retention %s: unchanged\n' "$db" "$duration"
fi
