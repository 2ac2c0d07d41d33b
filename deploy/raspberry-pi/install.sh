#!/usr/bin/env bash
# fm-gateway installer for Raspberry Pi OS Bookworm (64-bit and 32-bit) and Debian 12.
#
#   sudo ./install.sh [options]                   install, or upgrade: re-run it after a code change
#   sudo ./install.sh --add-device NAME           an MQTT account for one device
#   sudo ./install.sh --remove-device NAME
#   sudo ./install.sh --uninstall [--purge]       remove the program; --purge: its data and settings too
#
# Options (remembered in /etc/fm-gateway/install.env: a re-run without them keeps the last ones):
#   --site ID               the site's id in the MQTT topics fm/{site}/... (default: site)
#   --site-name NAME        the site's name in the starter site file (default: the id)
#   --lan-address ADDR      the broker also listens on this LAN address (default: loopback only)
#   --mqtt-port N           the broker's plain port (default 1883)
#   --tls                   a TLS listener (port --mqtts-port, default 8883) with a site CA made by
#                           site-ca.sh; the LAN then gets TLS only, plain MQTT stays on loopback
#   --no-tls                no TLS listener
#   --api-bind HOST:PORT    the gateway's web pages and API (default: the LAN address, else
#                           127.0.0.1, port 8080)
#   --influx-url URL        InfluxDB (default http://127.0.0.1:8086: installed and set up here)
#   --influx-db NAME        database, or bucket with v2 (default facility)
#   --retention-days N      the database's default retention (default 400; 0: forever)
#   --influx-api v1|v2      v2: a central InfluxDB 2.x / 3.x or Cloud (no local InfluxDB), with
#   --influx-org ORG        its organisation and
#   --influx-token-file F   a file holding its token (never give a token on the command line)
#   --no-packages           do not apt-get (the Debian packages are already there)
#   --root DIR              install into DIR (an image, a test): every path is under DIR, and no
#                           service is started
#   --source DIR            the fm-gateway checkout to install (default: the one holding this script)
#
# The gateway's settings (/etc/fm-gateway/gateway.toml) and site file are written once and never
# overwritten. Generated passwords are in root-only files under /etc/fm-gateway/mqtt/ and never
# printed. See README.md next to this script.
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KINDS="streetlight fire_extinguisher fire_hydrant smoke_detector drain_level checkpoint"
PACKAGES="mosquitto mosquitto-clients python3 python3-venv curl openssl ca-certificates"

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,33s/^# \{0,1\}//p' "$0"
    exit "${1:-0}"
}
is_segment() { [[ $1 =~ ^[A-Za-z0-9_.-]{1,64}$ ]]; }

# --- options ---------------------------------------------------------------------------------

ROOT=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [ "${args[i]}" = --root ]; then
        ROOT=${args[i + 1]:-}
        [ -n "$ROOT" ] || die "--root needs a folder"
        mkdir -p "$ROOT"
        ROOT=$(cd "$ROOT" && pwd)
    fi
done

ETC=$ROOT/etc/fm-gateway
ACCOUNTS=$ETC/mqtt
DATA=$ROOT/var/lib/fm-gateway
OPT=$ROOT/opt/fm-gateway
VENV=$OPT/venv
CONFIG=$ETC/gateway.toml
SITE_FILE=$ETC/site.toml
SAVED=$ETC/install.env
UNIT=$ROOT/etc/systemd/system/fm-gateway.service
MOSQ_CONF=$ROOT/etc/mosquitto/conf.d/fm-gateway.conf
MOSQ_DIR=$ROOT/etc/mosquitto/fm-gateway
MOSQ_DROPIN=$ROOT/etc/systemd/system/mosquitto.service.d/fm-gateway.conf
INFLUX_DEFAULTS=$ROOT/etc/default/influxdb
MODULES=$ROOT/etc/modules-load.d/fm-gateway.conf

SITE=site
SITE_NAME=""
LAN_ADDRESS=""
MQTT_PORT=1883
TLS=no
MQTTS_PORT=8883
API_BIND=""
INFLUX_URL=http://127.0.0.1:8086
INFLUX_DB=facility
RETENTION_DAYS=400
INFLUX_API=v1
INFLUX_ORG=""
SAVED_KEYS="SITE SITE_NAME LAN_ADDRESS MQTT_PORT TLS MQTTS_PORT API_BIND INFLUX_URL INFLUX_DB RETENTION_DAYS
INFLUX_API INFLUX_ORG"

# The last run's options: KEY=VALUE lines, read as data (never sourced).
if [ -f "$SAVED" ]; then
    while IFS='=' read -r key value; do
        case " $(echo "$SAVED_KEYS" | tr '\n' ' ') " in
            *" $key "*) printf -v "$key" '%s' "$value" ;;
        esac
    done <"$SAVED"
fi

ACTION=install
PURGE=no
APT=yes
DEVICE=""
TOKEN_FILE=""
SOURCE=$(cd "$HERE/../.." && pwd)
need() { [ -n "${2:-}" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case $1 in
        --site) need "$@"; SITE=$2; shift ;;
        --site-name) need "$@"; SITE_NAME=$2; shift ;;
        --lan-address) need "$@"; LAN_ADDRESS=$2; shift ;;
        --mqtt-port) need "$@"; MQTT_PORT=$2; shift ;;
        --tls) TLS=yes ;;
        --no-tls) TLS=no ;;
        --mqtts-port) need "$@"; MQTTS_PORT=$2; shift ;;
        --api-bind) need "$@"; API_BIND=$2; shift ;;
        --influx-url) need "$@"; INFLUX_URL=${2%/}; shift ;;
        --influx-db) need "$@"; INFLUX_DB=$2; shift ;;
        --retention-days) need "$@"; RETENTION_DAYS=$2; shift ;;
        --influx-api) need "$@"; INFLUX_API=$2; shift ;;
        --influx-org) need "$@"; INFLUX_ORG=$2; shift ;;
        --influx-token-file) need "$@"; TOKEN_FILE=$2; shift ;;
        --no-packages) APT=no ;;
        --root) shift ;; # read above
        --source) need "$@"; SOURCE=$(cd "$2" && pwd); shift ;;
        --add-device) need "$@"; ACTION=add-device; DEVICE=$2; shift ;;
        --remove-device) need "$@"; ACTION=remove-device; DEVICE=$2; shift ;;
        --uninstall) ACTION=uninstall ;;
        --purge) PURGE=yes ;;
        -h | --help) usage 0 ;;
        *) die "unknown option $1 (--help lists them)" ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0 ...)"
[ "$PURGE" = no ] || [ "$ACTION" = uninstall ] || die "--purge goes with --uninstall"
is_segment "$SITE" || die "--site '$SITE': use 1-64 of A-Z a-z 0-9 _ . - (it is a topic segment)"
SITE_NAME=${SITE_NAME:-$SITE}
[[ $SITE_NAME != *[\"\\]* && $SITE_NAME != *$'\n'* ]] || die "--site-name: no quotes, backslashes or line breaks"
[[ $MQTT_PORT =~ ^[0-9]+$ && $MQTTS_PORT =~ ^[0-9]+$ ]] || die "MQTT ports must be numbers"
[[ -z $LAN_ADDRESS || $LAN_ADDRESS =~ ^[0-9A-Fa-f.:]+$ ]] || die "--lan-address must be an IP address"
API_BIND=${API_BIND:-${LAN_ADDRESS:-127.0.0.1}:8080}
[[ $API_BIND =~ ^[^[:space:]\"]+:[0-9]+$ ]] || die "--api-bind must be HOST:PORT"
is_segment "$INFLUX_DB" || die "--influx-db '$INFLUX_DB': use 1-64 of A-Z a-z 0-9 _ . -"
[[ $RETENTION_DAYS =~ ^[0-9]+$ ]] || die "--retention-days must be a whole number"
[[ $INFLUX_URL =~ ^https?://[^[:space:]\"/]+$ ]] || die "--influx-url must be http(s)://HOST[:PORT]"
case $INFLUX_API in v1 | v2) ;; *) die "--influx-api must be v1 or v2" ;; esac
[[ $INFLUX_ORG != *[\"\\]* ]] || die "--influx-org: no quotes or backslashes"

# A local InfluxDB 1.x (installed, configured and set up here): v1 on a loopback URL.
LOCAL_INFLUX=no
if [ "$INFLUX_API" = v1 ] && [[ $INFLUX_URL =~ ^http://(127\.0\.0\.1|localhost)(:([0-9]+))?$ ]]; then
    LOCAL_INFLUX=yes
    INFLUX_PORT=${BASH_REMATCH[3]:-8086}
fi

# --- helpers ---------------------------------------------------------------------------------

declare -A CHANGED=()

# systemctl only on a machine booted with systemd, and never into --root.
have_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# The numeric id of NAME in ROOT's passwd or group file (empty when it has none).
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/passwd" 2>/dev/null || true; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group" 2>/dev/null || true; }
owner() { # USER GROUP -> uid:gid in ROOT's files, root for a name it lacks
    local u g
    u=$(uid_of "$1")
    g=$(gid_of "$2")
    printf '%s:%s' "${u:-0}" "${g:-0}"
}

# put_file COMPONENT PATH MODE USER GROUP < content: replaces PATH only when its content differs,
# then sets mode and owner; marks COMPONENT changed when anything changed.
put_file() {
    local component=$1 path=$2 mode=$3 own tmp
    own=$(owner "$4" "$5")
    mkdir -p "$(dirname "$path")"
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
    else
        chmod "$mode" "$tmp"
        chown "$own" "$tmp"
        mv -f "$tmp" "$path"
        say "wrote ${path#"$ROOT"}"
        CHANGED[$component]=1
    fi
    set_mode "$component" "$path" "$mode" "$own"
}

set_mode() { # COMPONENT PATH MODE UID:GID
    local current
    current=$(stat -c '%a %u:%g' "$2")
    if [ "$current" != "$(printf '%o' "0$3") $4" ]; then
        chmod "$3" "$2"
        chown "$4" "$2"
        CHANGED[$1]=1
    fi
}

make_dir() { # PATH MODE USER GROUP
    mkdir -p "$1"
    set_mode dirs "$1" "$2" "$(owner "$3" "$4")"
}

new_secret() { openssl rand -hex 24; }

# Replaces the block between the fm-gateway markers in FILE (or appends it); reads the block on stdin.
block_markers=("# BEGIN fm-gateway (install.sh writes this block; edit outside it)" "# END fm-gateway")
strip_block() { # FILE -> its lines outside the block
    [ -f "$1" ] || return 0
    awk -v b="${block_markers[0]}" -v e="${block_markers[1]}" \
        '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' "$1"
}

# --- steps -----------------------------------------------------------------------------------

install_packages() {
    local wanted=$PACKAGES
    [ "$LOCAL_INFLUX" = no ] || wanted="$wanted influxdb"
    if [ "$APT" = yes ]; then
        [ -z "$ROOT" ] || die "--root installs no Debian packages: add --no-packages (install them in the image)"
        local missing=""
        for p in $wanted; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
        done
        if [ -n "$missing" ]; then
            say "installing Debian packages:$missing"
            # shellcheck disable=SC2086 # a list of package names
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                $missing >/dev/null
        fi
    fi
    for cmd in mosquitto_passwd python3 curl openssl; do
        command -v "$cmd" >/dev/null || die "$cmd is missing: apt-get install $wanted"
    done
    python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3-venv is missing: apt-get install python3-venv"
}

ensure_user() {
    local prefix=()
    [ -z "$ROOT" ] || prefix=(--prefix "$ROOT")
    if [ ! -f "$ROOT/etc/passwd" ] || [ ! -f "$ROOT/etc/group" ]; then
        say "note: $ROOT/etc/passwd or group missing: the user fm-gateway is not made and files stay root's"
        return
    fi
    [ -n "$(gid_of dialout)" ] || die "no group dialout in $ROOT/etc/group"
    if [ -z "$(uid_of fm-gateway)" ]; then
        useradd "${prefix[@]}" --system --user-group --groups dialout --home-dir /var/lib/fm-gateway \
            --no-create-home --shell /usr/sbin/nologin --comment "fm-gateway facility monitoring" fm-gateway
        say "made the system user fm-gateway (group dialout)"
        CHANGED[user]=1
    elif ! awk -F: '$1 == "dialout" { print "," $4 "," }' "$ROOT/etc/group" | grep -q ',fm-gateway,'; then
        usermod "${prefix[@]}" --append --groups dialout fm-gateway
        say "added fm-gateway to the group dialout"
        CHANGED[user]=1
    fi
}

save_options() {
    local key
    for key in $SAVED_KEYS; do
        printf '%s=%s\n' "$key" "${!key}"
    done | put_file settings "$SAVED" 0600 root root
}

# The checkout's package files and the Python version: a change means a reinstall.
source_stamp() {
    (
        cd "$SOURCE"
        python3 --version
        find pyproject.toml README.md gateway -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -d' ' -f1
}

install_venv() {
    if [ ! -f "$SOURCE/pyproject.toml" ] || [ ! -d "$SOURCE/gateway" ]; then
        die "no fm-gateway checkout at $SOURCE (--source)"
    fi
    local stamp build wheel
    stamp=$(source_stamp)
    if [ -x "$VENV/bin/gateway" ] && [ "$(cat "$OPT/installed.sha256" 2>/dev/null)" = "$stamp" ]; then
        say "the gateway in $VENV is up to date"
        return
    fi
    make_dir "$OPT" 0755 root root
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    say "installing the gateway from $SOURCE into $VENV (a few minutes the first time)"
    build=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the folder of this call
    trap "rm -rf '$build'" EXIT
    mkdir "$build/src"
    tar -C "$SOURCE" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md gateway |
        tar -C "$build/src" -xf -
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_WARN_SCRIPT_LOCATION=1
    "$VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$build/wheel" "$build/src"
    wheel=$(find "$build/wheel" -name 'fm_gateway-*.whl' | head -n 1)
    [ -n "$wheel" ] || die "pip built no wheel"
    "$VENV/bin/python" -m pip install --quiet "$wheel"                                # its dependencies
    "$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel" # this very code
    rm -rf "$build"
    trap - EXIT
    printf '%s\n' "$stamp" | put_file gateway "$OPT/installed.sha256" 0644 root root
    CHANGED[gateway]=1
}

# One password file per MQTT account, root-only but for the gateway's own, which the gateway reads
# (mqtt.password_file: the settings file holds no secret); mosquitto gets their hashes.
ensure_account() { # NAME [GROUP that may read it]
    local file=$ACCOUNTS/$1.password
    if [ ! -s "$file" ]; then
        (umask 077 && new_secret >"$file")
        say "made the MQTT account $1 (its password is in ${file#"$ROOT"})"
        CHANGED[mosquitto]=1
    fi
    if [ -n "${2:-}" ]; then
        set_mode mosquitto "$file" 0640 "$(owner root "$2")"
    else
        set_mode mosquitto "$file" 0600 "0:0"
    fi
}

mosquitto_passwords() {
    local plain sum name f
    plain=$(mktemp "$ACCOUNTS/.plain.XXXXXX") # in the root-only folder
    for f in "$ACCOUNTS"/*.password; do
        name=$(basename "$f" .password)
        printf '%s:%s\n' "$name" "$(cat "$f")"
    done >"$plain"
    sum=$(sha256sum <"$plain" | cut -d' ' -f1)
    if [ -f "$MOSQ_DIR/passwd" ] && [ "$(cat "$ACCOUNTS/.passwd.sha256" 2>/dev/null)" = "$sum" ]; then
        rm -f "$plain"
    else
        mosquitto_passwd -U "$plain" # hashes it in place: no password on a command line
        chmod 0640 "$plain"
        chown "$(owner root mosquitto)" "$plain"
        mv -f "$plain" "$MOSQ_DIR/passwd"
        (umask 077 && printf '%s\n' "$sum" >"$ACCOUNTS/.passwd.sha256")
        say "wrote ${MOSQ_DIR#"$ROOT"}/passwd"
        CHANGED[mosquitto]=1
    fi
    set_mode mosquitto "$MOSQ_DIR/passwd" 0640 "$(owner root mosquitto)"
}

configure_mosquitto() {
    local kind
    make_dir "$ACCOUNTS" 0750 root fm-gateway
    make_dir "$MOSQ_DIR" 0750 root mosquitto
    ensure_account fm-gateway fm-gateway
    for kind in $KINDS; do
        ensure_account "class-$kind"
    done
    mosquitto_passwords

    {
        echo "# Who may publish and subscribe where. Written by install.sh: re-run it rather than edit this."
        echo "# The gateway reads every topic and writes only its own."
        echo "user fm-gateway"
        echo "topic read fm/#"
        echo "topic write fm/$SITE/gateway/#"
        echo
        echo "# One account per device class: its devices publish under fm/$SITE/{kind}/ only."
        for kind in $KINDS; do
            echo "user class-$kind"
            echo "topic write fm/$SITE/$kind/#"
            echo
        done
        echo "# One account per device (install.sh --add-device NAME): it publishes under its own id only,"
        echo "# fm/$SITE/{kind}/NAME/..."
        echo "pattern write fm/$SITE/+/%u/#"
    } | put_file mosquitto "$MOSQ_DIR/acl" 0640 root mosquitto

    if [ "$TLS" = yes ]; then
        local tls=$ETC/tls sans=(localhost 127.0.0.1)
        [ -z "$LAN_ADDRESS" ] || sans+=("$LAN_ADDRESS")
        make_dir "$ETC" 0750 root fm-gateway
        "$HERE/site-ca.sh" --dir "$tls" ca "fm-gateway $SITE CA" >/dev/null
        "$HERE/site-ca.sh" --dir "$tls" server "$(hostname)" "$(hostname)" "${sans[@]}" >/dev/null
        put_file mosquitto "$MOSQ_DIR/ca.crt" 0644 root mosquitto <"$tls/ca.crt"
        put_file mosquitto "$MOSQ_DIR/server.crt" 0644 root mosquitto <"$tls/server.crt"
        put_file mosquitto "$MOSQ_DIR/server.key" 0640 root mosquitto <"$tls/server.key"
    fi

    {
        echo "# fm-gateway's broker settings. Written by install.sh: re-run it with other options rather"
        echo "# than edit this (it would be overwritten)."
        echo "allow_anonymous false"
        echo "password_file $MOSQ_DIR/passwd"
        echo "acl_file $MOSQ_DIR/acl"
        echo "# Messages kept for the gateway while it is away (its session lasts 7 days)."
        echo "max_queued_messages 200000"
        echo "persistent_client_expiration 14d"
        echo
        echo "listener $MQTT_PORT 127.0.0.1"
        if [ -n "$LAN_ADDRESS" ] && [ "$TLS" = no ]; then
            echo "listener $MQTT_PORT $LAN_ADDRESS"
        fi
        if [ "$TLS" = yes ]; then
            local address
            for address in 127.0.0.1 $LAN_ADDRESS; do
                echo
                echo "listener $MQTTS_PORT $address"
                echo "cafile $MOSQ_DIR/ca.crt"
                echo "certfile $MOSQ_DIR/server.crt"
                echo "keyfile $MOSQ_DIR/server.key"
                echo "tls_version tlsv1.2"
            done
        fi
    } | put_file mosquitto "$MOSQ_CONF" 0644 root root

    {
        echo "# Written by fm-gateway's install.sh: the broker listens on the LAN address, so it starts"
        echo "# once the network is up, and is restarted whatever stopped it."
        echo "[Unit]"
        echo "Wants=network-online.target"
        echo "After=network-online.target"
        echo
        echo "[Service]"
        echo "Restart=always"
        echo "RestartSec=5"
    } | put_file systemd "$MOSQ_DROPIN" 0644 root root
}

# Debian's influxdb.service reads /etc/default/influxdb: INFLUXDB_* variables override influxdb.conf.
configure_influx() {
    [ "$LOCAL_INFLUX" = yes ] || return 0
    {
        strip_block "$INFLUX_DEFAULTS"
        echo "${block_markers[0]}"
        echo "# InfluxDB for an SD card: loopback only, fewer and larger writes, no self-monitoring."
        echo "INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$INFLUX_PORT"
        echo "INFLUXDB_BIND_ADDRESS=127.0.0.1:8088"
        echo "INFLUXDB_REPORTING_DISABLED=true"
        echo "INFLUXDB_REPORTING_ENABLED=false"
        echo "INFLUXDB_HTTP_LOG_ENABLED=false"
        echo "INFLUXDB_HTTP_PPROF_ENABLED=false"
        echo "INFLUXDB_MONITOR_STORE_ENABLED=false"
        echo "INFLUXDB_DATA_QUERY_LOG_ENABLED=false"
        echo "INFLUXDB_DATA_INDEX_VERSION=tsi1"
        echo "INFLUXDB_DATA_WAL_FSYNC_DELAY=100ms"
        echo "INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=1h"
        echo "INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION=24h"
        echo "INFLUXDB_DATA_MAX_CONCURRENT_COMPACTIONS=1"
        echo "INFLUXDB_CONTINUOUS_QUERIES_LOG_ENABLED=false"
        echo "INFLUXDB_LOGGING_LEVEL=warn"
        echo "${block_markers[1]}"
    } | put_file influxdb "$INFLUX_DEFAULTS" 0644 root root
}

write_settings() {
    make_dir "$ETC" 0750 root fm-gateway
    make_dir "$DATA" 0750 fm-gateway fm-gateway
    if [ -f "$CONFIG" ]; then
        say "kept ${CONFIG#"$ROOT"} (the installer never overwrites it)"
    else
        if [ "$INFLUX_API" = v2 ]; then
            [ -s "$TOKEN_FILE" ] || die "--influx-api v2 needs --influx-token-file FILE (not empty)"
            [ -n "$INFLUX_ORG" ] || die "--influx-api v2 needs --influx-org ORG"
            # The gateway's copy, readable by it alone: influx.token_file, no token in the settings.
            head -n1 "$TOKEN_FILE" | tr -d '\r' | put_file settings "$ETC/influx-token" 0640 root fm-gateway
        fi
        {
            cat <<EOF
# fm-gateway settings. install.sh wrote this file once and never overwrites it: edit it, check it
# with \`$VENV/bin/gateway check --config $CONFIG\`, then \`systemctl restart fm-gateway\`.
# Every key is in gateway/config.py; GATEWAY_<SECTION>_<KEY> environment variables override them.

site = "$SITE"          # {site} of the MQTT topics fm/{site}/...
gateway_id = "gw1"
data_dir = "$DATA"
site_file = "$SITE_FILE"   # assets, devices, checkpoints: \`systemctl reload fm-gateway\` re-reads it

[mqtt]
# The gateway's account on the local broker; its password is read from the file, never written here.
url = "mqtt://fm-gateway@127.0.0.1:$MQTT_PORT"
password_file = "$ACCOUNTS/fm-gateway.password"

[influx]
EOF
            if [ "$INFLUX_API" = v1 ]; then
                cat <<EOF
api = "v1"
url = "$INFLUX_URL"
db = "$INFLUX_DB"
# A central InfluxDB 2.x / 3.x or InfluxDB Cloud instead (the local InfluxDB is then unused):
# api = "v2"
# url = "https://influx.example.com:8086"
# org = "my-org"
# db = "facility"        # the bucket
# token_file = "$ETC/influx-token"  # root:fm-gateway 0640; a token that may write and read the bucket
EOF
            else
                cat <<EOF
api = "v2"
url = "$INFLUX_URL"
org = "$INFLUX_ORG"
db = "$INFLUX_DB"        # the bucket
token_file = "$ETC/influx-token"
EOF
            fi
            cat <<EOF

[api]
bind = "$API_BIND"      # the web pages and the API
# The first admin's one-time password is written to $DATA/admin-password at the first start.

[clock]
# A Pi without a real-time clock boots at a wrong time: SLA escalations, missed rounds and silent
# devices wait until NTP has set the clock once (readings are stored meanwhile). \`gateway doctor\`
# shows the clock's state.
require_sync = true

# Serial ports: one [[serial]] table each, by their stable /dev/serial/by-id/ names (README.md).
# [[serial]]
# port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0"
# mode = "nfc-lines"
# reader = "gate-north"
EOF
        } | put_file settings "$CONFIG" 0640 root fm-gateway
    fi
    if [ -f "$SITE_FILE" ]; then
        say "kept ${SITE_FILE#"$ROOT"}"
    else
        put_file settings "$SITE_FILE" 0640 root fm-gateway <<EOF
# The site: its assets, the device bound to each, its patrol checkpoints. install.sh wrote this
# starter once and never overwrites it. Check it with
# \`$VENV/bin/gateway check --config $CONFIG\`; \`systemctl reload fm-gateway\` re-reads it.

[site]
name = "$SITE_NAME"
timezone = "Asia/Shanghai"
# latitude = 31.23        # the site's position: when streetlights should be lit
# longitude = 121.47

# [[assets]]
# id = "L-0001"
# name = "1号路灯"
# category = "lighting"    # lighting | fire | drainage
# kind = "streetlight"
# device = "lamp-0001"     # publishes on fm/$SITE/streetlight/lamp-0001/reading

# [[checkpoints]]
# id = "CP-01"
# name = "北门"
# tag = "04A224B2C15E80"
EOF
    fi
}

write_unit() {
    sed -e "s|@VENV@|$VENV|g" -e "s|@CONFIG@|$CONFIG|g" -e "s|@DATA_DIR@|$DATA|g" -e "s|@OPT@|$OPT|g" \
        "$HERE/fm-gateway.service.in" | put_file systemd "$UNIT" 0644 root root
    put_file gateway "$OPT/README.md" 0644 root root <"$HERE/README.md"
    {
        echo "# Written by fm-gateway's install.sh: the serial drivers' device groups exist at boot, so the"
        echo "# gateway's DeviceAllow=char-ttyUSB / char-ttyACM admit an adapter plugged in later."
        echo "usbserial"
        echo "cdc_acm"
    } | put_file systemd "$MODULES" 0644 root root
}

start_services() {
    local services="mosquitto"
    [ "$LOCAL_INFLUX" = no ] || services="$services influxdb"
    services="$services fm-gateway"
    if ! have_systemd; then
        say "no systemd here (or --root): would enable and start $services"
        return
    fi
    [ -z "${CHANGED[systemd]:-}" ] || systemctl daemon-reload
    # shellcheck disable=SC2086 # a list of unit names
    systemctl enable --quiet $services
    if [ -n "${CHANGED[mosquitto]:-}${CHANGED[systemd]:-}" ]; then
        systemctl restart mosquitto
    else
        systemctl start mosquitto
    fi
    if [ "$LOCAL_INFLUX" = yes ]; then
        if [ -n "${CHANGED[influxdb]:-}" ]; then systemctl restart influxdb; else systemctl start influxdb; fi
    fi
}

setup_database() {
    [ "$LOCAL_INFLUX" = yes ] || return 0
    if have_systemd || curl -fsS --max-time 2 -o /dev/null "$INFLUX_URL/ping" 2>/dev/null; then
        "$HERE/influx-setup.sh" "$INFLUX_URL" "$INFLUX_DB" "$RETENTION_DAYS" | sed 's/^influx-setup.sh: /install.sh: /'
    else
        say "note: no InfluxDB answers at $INFLUX_URL: database $INFLUX_DB not set up (start it and re-run)"
    fi
}

start_gateway() {
    if ! have_systemd; then
        return
    fi
    if [ -n "${CHANGED[gateway]:-}${CHANGED[systemd]:-}${CHANGED[user]:-}" ]; then
        systemctl restart fm-gateway
        say "restarted fm-gateway"
    else
        systemctl start fm-gateway
    fi
}

do_install() {
    install_packages
    ensure_user
    make_dir "$ETC" 0750 root fm-gateway
    save_options
    install_venv
    configure_mosquitto
    configure_influx
    write_settings
    write_unit
    # The settings file alone, as the service reads it: without this shell's GATEWAY_* variables.
    local unset=() var
    for var in $(compgen -e); do
        [[ $var != GATEWAY_* ]] || unset+=(-u "$var")
    done
    env "${unset[@]}" "$VENV/bin/gateway" check --config "$CONFIG" |
        sed 's/^/install.sh: /' || die "the settings do not pass \`gateway check\`: fix ${CONFIG#"$ROOT"} and re-run"
    start_services
    setup_database
    start_gateway
    if [ ${#CHANGED[@]} -eq 0 ]; then
        say "nothing changed"
    fi
    say "done. Logs: journalctl -u fm-gateway. First login: user admin, one-time password in" \
        "${DATA#"$ROOT"}/admin-password (written at the first start). Pages: http://$API_BIND/"
}

add_device() {
    is_segment "$DEVICE" || die "device name '$DEVICE': use 1-64 of A-Z a-z 0-9 _ . -"
    case $DEVICE in fm-gateway | class-*) die "'$DEVICE' is a reserved account name" ;; esac
    [ -f "$MOSQ_CONF" ] || die "fm-gateway is not installed here: run install.sh first"
    ensure_account "$DEVICE"
    mosquitto_passwords
    if have_systemd; then systemctl reload mosquitto; fi
    say "device $DEVICE publishes under fm/$SITE/{kind}/$DEVICE/ with user $DEVICE and the password in" \
        "${ACCOUNTS#"$ROOT"}/$DEVICE.password"
}

remove_device() {
    is_segment "$DEVICE" || die "device name '$DEVICE': use 1-64 of A-Z a-z 0-9 _ . -"
    case $DEVICE in fm-gateway | class-*) die "'$DEVICE' is not a device account" ;; esac
    [ -f "$ACCOUNTS/$DEVICE.password" ] || die "no device account $DEVICE"
    rm -f "$ACCOUNTS/$DEVICE.password"
    mosquitto_passwords
    if have_systemd; then systemctl reload mosquitto; fi
    say "removed the MQTT account $DEVICE"
}

do_uninstall() {
    if have_systemd; then
        systemctl disable --now --quiet fm-gateway.service 2>/dev/null || true
    fi
    rm -rf "$OPT"
    rm -f "$UNIT" "$MODULES"
    say "removed the program (${OPT#"$ROOT"}) and the fm-gateway service"
    if [ "$PURGE" = yes ]; then
        rm -rf "$DATA" "$ETC" "$MOSQ_DIR"
        rm -f "$MOSQ_CONF" "$MOSQ_DROPIN"
        rmdir "$(dirname "$MOSQ_DROPIN")" 2>/dev/null || true
        if [ -f "$INFLUX_DEFAULTS" ]; then
            strip_block "$INFLUX_DEFAULTS" | put_file influxdb "$INFLUX_DEFAULTS" 0644 root root
            [ -s "$INFLUX_DEFAULTS" ] || rm -f "$INFLUX_DEFAULTS"
        fi
        local prefix=()
        [ -z "$ROOT" ] || prefix=(--prefix "$ROOT")
        if [ -n "$(uid_of fm-gateway)" ]; then
            userdel "${prefix[@]}" fm-gateway
        fi
        if [ -n "$(gid_of fm-gateway)" ]; then # userdel keeps it without USERGROUPS_ENAB (as under --root)
            groupdel "${prefix[@]}" fm-gateway
        fi
        say "purged the data (${DATA#"$ROOT"}), the settings and accounts (${ETC#"$ROOT"}), the broker's" \
            "fm-gateway settings and the user fm-gateway"
        say "kept: the InfluxDB database $INFLUX_DB (to drop it: curl -XPOST $INFLUX_URL/query" \
            "--data-urlencode 'q=DROP DATABASE \"$INFLUX_DB\"') and the Debian packages mosquitto and influxdb"
        if have_systemd; then
            systemctl daemon-reload
            systemctl restart mosquitto
            systemctl try-restart influxdb
        fi
    else
        if have_systemd; then systemctl daemon-reload; fi
        say "kept: the data (${DATA#"$ROOT"}), the settings and MQTT accounts (${ETC#"$ROOT"}), the broker and" \
            "InfluxDB with their data; --uninstall --purge removes the gateway's too"
    fi
}

case $ACTION in
    install) do_install ;;
    add-device) add_device ;;
    remove-device) remove_device ;;
    uninstall) do_uninstall ;;
esac
