#!/usr/bin/env bash
# A site's own certificate authority, and the certificates of its broker and devices, with openssl.
#
#   site-ca.sh [--dir DIR] [--days N] ca [NAME]           the site CA (once per site)
#   site-ca.sh [--dir DIR] [--days N] server NAME [SAN...] the broker's certificate; SAN: host names
#                                                          and IP addresses devices connect to
#   site-ca.sh [--dir DIR] [--days N] device NAME          a device's client certificate (CN = NAME)
#
# DIR defaults to /etc/fm-gateway/tls. Nothing is ever overwritten: a file that exists is kept,
# so running a command twice changes nothing (delete the files to make new ones).
# Keys are written with mode 0600; certificates 0644. Devices need ca.crt to check the broker.
set -euo pipefail

DIR=/etc/fm-gateway/tls
DAYS=3650

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
    exit "${1:-0}"
}

die() {
    printf 'site-ca.sh: error: %s\n' "$*" >&2
    exit 1
}

check_name() {
    [[ $1 =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad name '$1': use 1-64 of A-Z a-z 0-9 _ . -"
}

while [ $# -gt 0 ]; do
    case $1 in
        --dir) DIR=${2:?--dir needs a folder}; shift 2 ;;
        --days) DAYS=${2:?--days needs a number}; shift 2 ;;
        -h | --help) usage 0 ;;
        --*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage 2
[[ $DAYS =~ ^[0-9]+$ ]] || die "--days must be a number of days"
command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"

umask 077
mkdir -p "$DIR"
chmod 0755 "$DIR"

# A new key and a certificate signed by the site CA. $1: file stem, $2: CN, $3: extensions.
issue() {
    local stem=$1 cn=$2 ext=$3 tmp
    if [ -f "$stem.crt" ]; then
        printf 'site-ca.sh: %s exists, kept\n' "$stem.crt"
        return
    fi
    if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
        die "no site CA in $DIR: run 'site-ca.sh ca' first"
    fi
    tmp=$(mktemp -d)
    printf '%s\n' "$ext" >"$tmp/ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$tmp/key" -subj "/CN=$cn" -out "$tmp/csr" 2>/dev/null
    openssl x509 -req -in "$tmp/csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -extfile "$tmp/ext" -out "$tmp/crt" 2>/dev/null
    install -m 0600 "$tmp/key" "$stem.key"
    install -m 0644 "$tmp/crt" "$stem.crt"
    rm -rf "$tmp"
    printf 'site-ca.sh: wrote %s and %s\n' "$stem.crt" "$stem.key"
}

case $1 in
    ca)
        name=${2:-fm-gateway site CA}
        if [ -f "$DIR/ca.crt" ]; then
            printf 'site-ca.sh: %s exists, kept\n' "$DIR/ca.crt"
            exit 0
        fi
        openssl req -x509 -newkey rsa:3072 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days "$DAYS" \
            -subj "/CN=$name" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        chmod 0600 "$DIR/ca.key"
        chmod 0644 "$DIR/ca.crt"
        printf 'site-ca.sh: wrote %s (give it to the devices) and %s (keep it secret)\n' "$DIR/ca.crt" "$DIR/ca.key"
        ;;
    server)
        [ $# -ge 2 ] || usage 2
        check_name "$2"
        sans=""
        for san in "${@:2}"; do
            if [[ $san =~ ^[0-9.]+$ || $san == *:* ]]; then
                sans="$sans,IP:$san"
            else
                sans="$sans,DNS:$san"
            fi
        done
        issue "$DIR/server" "$2" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${sans#,}"
        ;;
    device)
        [ $# -eq 2 ] || usage 2
        check_name "$2"
        mkdir -p "$DIR/devices"
        issue "$DIR/devices/$2" "$2" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
        ;;
    *) usage 2 ;;
esac
