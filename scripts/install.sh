#!/bin/sh
# shellcheck shell=sh disable=SC2034
#
# Install km, the Kilometers CLI.
#
#   curl -sSL https://get.kilometers.ai | sh
#   curl -sSL https://get.kilometers.ai | sh -s -- --version v1.2.3 --install-dir "$HOME/bin"
#
# Run with --help for the options. The contract is SPEC section 8 of the release system.
#
# How it is written:
# - The whole script is functions; `main "$@"` on the very last line is the only
#   statement that runs anything, so a download cut off half way runs nothing.
# - POSIX sh only: it runs under dash, bash, busybox ash, zsh (as sh), mksh, ksh,
#   yash and posh. No `local` (ksh93 has none for POSIX functions): every function's
#   variables carry a prefix of their own instead.
# - ASCII only: yash in the C locale refuses to read anything else.
# - Functions that can fail set globals and return a status; `err` (which exits)
#   is never called inside a command substitution, where it could not exit.
# - Every failure exits non-zero and ends with one `error:` line on stderr.
#   Progress goes to stdout, warnings and errors to stderr.

# --- release settings (rewritten by the engine when it publishes this script) ---
BINARY_NAME="km"
GITHUB_REPOSITORY="kilometers-ai/kilometers-cli"
DEFAULT_BASE_URL="https://get.kilometers.ai"
KEY_PRINCIPAL="release@get.kilometers.ai"
TRUSTED_KEYS="-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1wbWD0pmQABV8m7hcIHM3JhN5QKB
LnBs1E0o35wCC2/0cYfMA2tWBozB0y8cH4xcnTIc27BKcHfKqvOWkcY6NA==
-----END PUBLIC KEY-----
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEPlKU977OIK8Fd1VV9N90z+3/s2+
RsKHuLcmoyyxUnzMlov8ar/ELtFCKSxjyGTgaf9OF2nR0O3Z+OT5yNQeTg==
-----END PUBLIC KEY-----"
# --- end of release settings ---

KM_DEFAULT_GITHUB_BASE_URL="https://github.com"

# ----------------------------------------------------------------------------
# output

setup_colors() {
    _c_red=""
    _c_yellow=""
    _c_bold=""
    _c_reset=""
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    if [ -n "${NO_COLOR:-}" ] || [ "${TERM:-dumb}" = "dumb" ] || [ ! -t 2 ]; then
        return 0
    fi
    _c_esc=$(printf '\033')
    _c_red="${_c_esc}[31m"
    _c_yellow="${_c_esc}[33m"
    _c_bold="${_c_esc}[1m"
    _c_reset="${_c_esc}[0m"
}

say() {
    printf '%s\n' "$*"
}

warn() {
    printf '%swarning:%s %s\n' "$_c_yellow" "$_c_reset" "$*" >&2
}

# err MESSAGE: the one line a failure ends with, then exit 1 (the EXIT trap cleans up).
err() {
    printf '%serror:%s %s\n' "$_c_red" "$_c_reset" "$*" >&2
    exit 1
}

check_cmd() {
    command -v "$1" >/dev/null 2>&1
}

need_cmd() {
    if ! check_cmd "$1"; then
        err "this installer needs '$1' (command not found); install it and re-run"
    fi
}

# ensure CMD...: run a command that must not fail.
ensure() {
    if ! "$@"; then
        err "command failed: $*"
    fi
}

usage() {
    cat <<EOF
Install km, the Kilometers CLI.

usage: curl -sSL ${DEFAULT_BASE_URL} | sh -s -- [options]
       sh install.sh [options]

options:
  --version V         install version V (e.g. v1.2.3) instead of the current one
  --install-dir DIR   install km into DIR (default: /usr/local/bin when writable,
                      else \$HOME/.local/bin)
  --source cdn|github download only from the CDN or only from GitHub releases
                      (default: the CDN, falling back to GitHub when it fails)
  -h, --help          show this help and exit; downloads nothing

environment:
  KM_VERSION          same as --version
  KM_INSTALL_DIR      same as --install-dir
  KM_INSTALL_SOURCE   same as --source
  KM_BASE_URL         the CDN (default ${DEFAULT_BASE_URL})
  KM_GITHUB_BASE_URL  GitHub (default ${KM_DEFAULT_GITHUB_BASE_URL}); assets are at
                      <base>/${GITHUB_REPOSITORY}/releases/download/<version>/<file>
  NO_COLOR            no colours in messages

Every download is verified against its published SHA-256 before it is installed;
a mismatch is refused and never retried from another source. Plain http:// is
only accepted for loopback addresses. The installer never prompts.
EOF
}

# ----------------------------------------------------------------------------
# arguments

parse_args() {
    opt_version="${KM_VERSION:-}"
    opt_dir="${KM_INSTALL_DIR:-}"
    opt_source="${KM_INSTALL_SOURCE:-}"
    # --help anywhere wins, before anything else is looked at.
    for _pa_arg do
        case "$_pa_arg" in
            -h | --help)
                usage
                exit 0
                ;;
        esac
    done
    while [ $# -gt 0 ]; do
        case "$1" in
            --version | --install-dir | --source)
                if [ $# -lt 2 ]; then
                    err "$1 needs a value (see --help)"
                fi
                case "$1" in
                    --version) opt_version=$2 ;;
                    --install-dir) opt_dir=$2 ;;
                    --source) opt_source=$2 ;;
                esac
                shift 2
                ;;
            --version=*)
                opt_version=${1#*=}
                shift
                ;;
            --install-dir=*)
                opt_dir=${1#*=}
                shift
                ;;
            --source=*)
                opt_source=${1#*=}
                shift
                ;;
            -y | --yes)
                # Accepted for scripts written for other installers: km never prompts.
                shift
                ;;
            *)
                err "unknown option '$1' (see --help)"
                ;;
        esac
    done
    case "$opt_source" in
        "" | auto) opt_source=auto ;;
        cdn | github) ;;
        *) err "unknown source '$opt_source': use --source cdn or --source github" ;;
    esac
    if [ -n "$opt_version" ] && [ "$opt_version" != "latest" ]; then
        if ! normalise_version "$opt_version"; then
            err "'$opt_version' is not a version: use the form v1.2.3 (or v1.2.3-rc.1)"
        fi
        opt_version=$_nv_version
    else
        opt_version=""
    fi
}

# normalise_version V: sets _nv_version to vMAJOR.MINOR.PATCH[-PRE]; status 1 when V is not one.
normalise_version() {
    _nv_version=$1
    case "$_nv_version" in
        v*) ;;
        [0-9]*) _nv_version="v$_nv_version" ;;
        *) return 1 ;;
    esac
    _nv_rest=${_nv_version#v}
    _nv_core=${_nv_rest%%-*}
    _nv_pre=""
    case "$_nv_rest" in
        *-*) _nv_pre=${_nv_rest#*-} ;;
    esac
    case "$_nv_core" in
        *[!0-9.]* | .* | *. | *..* | *.*.*.*) return 1 ;;
        [0-9]*.[0-9]*.[0-9]*) ;;
        *) return 1 ;;
    esac
    case "$_nv_rest" in
        *-)
            return 1
            ;;
        *-*)
            case "$_nv_pre" in
                *[!0-9A-Za-z.-]* | .* | *. | *..*) return 1 ;;
            esac
            ;;
    esac
    return 0
}

# ----------------------------------------------------------------------------
# URLs

# strip_slashes VALUE: sets _ss_value to VALUE without trailing slashes.
strip_slashes() {
    _ss_value=$1
    while :; do
        case "$_ss_value" in
            */) _ss_value=${_ss_value%/} ;;
            *) break ;;
        esac
    done
}

# url_host URL: sets _uh_host to the host of an http(s) URL ("[::1]" keeps its brackets).
url_host() {
    _uh_host=${1#*://}
    _uh_host=${_uh_host%%/*}
    _uh_host=${_uh_host%%\?*}
    _uh_host=${_uh_host%%#*}
    _uh_host=${_uh_host##*@}
    case "$_uh_host" in
        \[*) _uh_host="${_uh_host%%]*}]" ;;
        *) _uh_host=${_uh_host%%:*} ;;
    esac
}

is_loopback_host() {
    case "$1" in
        localhost | localhost. | "[::1]") return 0 ;;
        127.*)
            case "$1" in
                *[!0-9.]*) return 1 ;;
            esac
            return 0
            ;;
    esac
    return 1
}

# check_url WHAT URL: https always; http only on loopback; nothing else.
check_url() {
    case "$2" in
        https://?*) return 0 ;;
        http://?*)
            url_host "$2"
            if is_loopback_host "$_uh_host"; then
                return 0
            fi
            err "refusing plain http:// for $1 ($2): use https://; http:// is only accepted for loopback (127.0.0.1, localhost, [::1])"
            ;;
    esac
    err "$1 must be an https:// URL, not '$2'"
}

# ----------------------------------------------------------------------------
# platform

detect_platform() {
    _dp_s=$(uname -s 2>/dev/null) || _dp_s=""
    _dp_m=$(uname -m 2>/dev/null) || _dp_m=""
    case "$_dp_s" in
        Linux) km_os=linux ;;
        Darwin) km_os=darwin ;;
        MINGW* | MSYS* | CYGWIN* | Windows_NT) km_os=windows ;;
        *) km_os="" ;;
    esac
    case "$_dp_m" in
        x86_64 | amd64 | x64) km_arch=amd64 ;;
        aarch64 | arm64 | ARM64) km_arch=arm64 ;;
        *) km_arch="" ;;
    esac
    if [ "$km_os" = darwin ] && [ "$km_arch" = amd64 ]; then
        # A shell under Rosetta 2 sees x86_64; the machine is Apple silicon.
        _dp_tr=$(sysctl -n sysctl.proc_translated 2>/dev/null) || _dp_tr=""
        if [ "$_dp_tr" = 1 ]; then
            km_arch=arm64
        fi
    fi
    if [ "$km_os" = windows ]; then
        # An x86_64 MSYS/Cygwin on Windows on Arm still reports the real machine here.
        case "${PROCESSOR_ARCHITEW6432:-}${PROCESSOR_ARCHITECTURE:-}" in
            *ARM64*) km_arch=arm64 ;;
        esac
    fi
    if [ -z "$km_os" ] || [ -z "$km_arch" ]; then
        err "unsupported platform ${_dp_s:-unknown}/${_dp_m:-unknown}: km is built for linux, darwin and windows on amd64 and arm64; see ${gh_base}/${GITHUB_REPOSITORY}/releases to download a build by hand"
    fi
    km_ext=""
    if [ "$km_os" = windows ]; then
        km_ext=".exe"
    fi
    km_asset="${BINARY_NAME}-${km_os}-${km_arch}${km_ext}"
    km_bin="${BINARY_NAME}${km_ext}"
}

# ----------------------------------------------------------------------------
# tools

pick_downloader() {
    if check_cmd curl; then
        km_downloader=curl
    elif check_cmd wget; then
        km_downloader=wget
        # busybox wget takes few options (and its 1.35 build crashes with -T).
        if wget -V 2>&1 | grep 'GNU Wget' >/dev/null 2>&1; then
            km_downloader=gnu-wget
        fi
    else
        err "this installer needs curl or wget; install one of them and re-run"
    fi
}

pick_hasher() {
    if check_cmd sha256sum; then
        km_hasher=sha256sum
    elif check_cmd shasum; then
        km_hasher=shasum
    elif check_cmd openssl; then
        km_hasher=openssl
    else
        err "cannot verify downloads: none of sha256sum, shasum or openssl is installed; install one of them and re-run"
    fi
}

# sha256_of FILE: sets _sh_sum to the lowercase hex SHA-256 of FILE; status 1 on failure.
sha256_of() {
    case "$km_hasher" in
        sha256sum) _sh_out=$(sha256sum <"$1" 2>/dev/null) || return 1 ;;
        shasum) _sh_out=$(shasum -a 256 <"$1" 2>/dev/null) || return 1 ;;
        openssl)
            _sh_out=$(openssl dgst -sha256 <"$1" 2>/dev/null) || return 1
            _sh_out=${_sh_out##*= }
            ;;
    esac
    _sh_sum=${_sh_out%%[!0-9a-fA-F]*}
    lowercase_hex "$_sh_sum"
    _sh_sum=$_lh_value
    [ ${#_sh_sum} -eq 64 ]
}

lowercase_hex() {
    _lh_value=$1
    case "$_lh_value" in
        *[A-F]*) _lh_value=$(printf '%s' "$_lh_value" | tr 'ABCDEF' 'abcdef') ;;
    esac
}

# ----------------------------------------------------------------------------
# downloads

# last_line FILE: sets _ll_line to the last non-empty line of FILE.
last_line() {
    _ll_line=""
    if [ -f "$1" ]; then
        while IFS= read -r _ll_l || [ -n "$_ll_l" ]; do
            if [ -n "$_ll_l" ]; then
                _ll_line=$_ll_l
            fi
        done <"$1"
    fi
}

# download URL DEST: status 0 when the whole body is in DEST. Otherwise sets
# _dl_class (missing: a 404; server: a 5xx; network: no connection; interrupted:
# the transfer broke off; other: anything else) and _dl_reason (for people).
download() {
    _dl_url=$1
    _dl_dest=$2
    _dl_class=""
    _dl_reason=""
    _dl_log="$km_tmp/download.log"
    check_url "download URL" "$_dl_url"
    rm -f "$_dl_dest" "$_dl_log"
    case "$km_downloader" in
        curl)
            case "$_dl_url" in
                https://*) _dl_proto="=https" ;;
                *) _dl_proto="=http,https" ;;
            esac
            _dl_code=$(curl --proto "$_dl_proto" --proto-redir "$_dl_proto" --fail --silent --show-error \
                --location --connect-timeout 20 --output "$_dl_dest" --write-out '%{http_code}' \
                "$_dl_url" 2>"$_dl_log")
            _dl_rc=$?
            [ "$_dl_rc" -eq 0 ] && return 0
            last_line "$_dl_log"
            _dl_reason=${_ll_line#curl: }
            case "$_dl_rc" in
                22)
                    _dl_reason="HTTP $_dl_code"
                    case "$_dl_code" in
                        404) _dl_class=missing ;;
                        5[0-9][0-9]) _dl_class=server ;;
                        *) _dl_class=other ;;
                    esac
                    ;;
                5 | 6 | 7 | 28 | 35 | 52) _dl_class=network ;;
                18 | 56 | 92) _dl_class=interrupted ;;
                *) _dl_class=other ;;
            esac
            ;;
        gnu-wget | wget)
            if [ "$km_downloader" = gnu-wget ]; then
                wget --tries=1 --timeout=30 --progress=dot:giga -O "$_dl_dest" "$_dl_url" 2>"$_dl_log"
            else
                wget -q -O "$_dl_dest" "$_dl_url" 2>"$_dl_log"
            fi
            _dl_rc=$?
            [ "$_dl_rc" -eq 0 ] && return 0
            _dl_text=""
            if [ -f "$_dl_log" ]; then
                while IFS= read -r _dl_l || [ -n "$_dl_l" ]; do
                    _dl_text="$_dl_text $_dl_l"
                done <"$_dl_log"
            fi
            last_line "$_dl_log"
            _dl_reason=${_ll_line#wget: }
            case "$_dl_text" in
                *"closed prematurely"* | *"Connection closed at byte"* | *"Read error"* | *"short read"*)
                    _dl_class=interrupted
                    ;;
                *"ERROR 404"* | *"HTTP/1."[01]" 404"*)
                    _dl_class=missing
                    _dl_reason="HTTP 404"
                    ;;
                *"ERROR 5"[0-9][0-9]* | *"HTTP/1."[01]" 5"[0-9][0-9]*)
                    _dl_class=server
                    ;;
                *"onnection refused"* | *"can't connect"* | *"unable to resolve"* | *"bad address"* | \
                    *"timed out"* | *"etwork is unreachable"* | *"o route to host"* | *"failed: "*)
                    _dl_class=network
                    ;;
                *)
                    _dl_class=other
                    ;;
            esac
            if [ "$_dl_rc" -gt 128 ]; then
                # busybox 1.35 wget dies of SIGSEGV on a refused connection.
                _dl_class=network
                _dl_reason="wget died (exit $_dl_rc): no connection"
            fi
            ;;
    esac
    if [ -z "$_dl_reason" ]; then
        _dl_reason="$km_downloader exit $_dl_rc"
    fi
    rm -f "$_dl_dest"
    return 1
}

# The failures after which the GitHub fallback may be tried: the CDN is out (or a
# captive portal answers for it), not lying: a checksum mismatch never gets here.
can_fall_back() {
    case "$_dl_class" in
        missing | server | network | garbled) return 0 ;;
    esac
    return 1
}

# ----------------------------------------------------------------------------
# install directory

choose_install_dir() {
    if [ -n "$opt_dir" ]; then
        km_dir=$opt_dir
        case "$km_dir" in
            \~) km_dir="${HOME:-}" ;;
            \~/*) km_dir="${HOME:-}/${km_dir#??}" ;;
        esac
        km_dir_chosen=yes
    else
        km_dir_chosen=no
        if [ -d /usr/local/bin ] && [ -w /usr/local/bin ]; then
            km_dir=/usr/local/bin
        elif [ -n "${HOME:-}" ]; then
            km_dir="$HOME/.local/bin"
        else
            err "/usr/local/bin is not writable and HOME is not set: choose a directory with --install-dir DIR"
        fi
    fi
    case "$km_dir" in
        /*) ;;
        *) km_dir="$(pwd)/$km_dir" ;;
    esac
    strip_slashes "$km_dir"
    km_dir=${_ss_value:-/}
}

# not_writable REASON: the advice line for a directory km cannot be written to.
not_writable() {
    if [ "$km_dir_chosen" = yes ]; then
        err "cannot write to $km_dir ($1): re-run with sudo, or choose a directory you own with --install-dir DIR (e.g. --install-dir \"\$HOME/.local/bin\")"
    fi
    err "cannot write to $km_dir ($1): re-run with sudo, or choose a directory with --install-dir DIR"
}

# prepare_install_dir: make the directory and the private temporary directory in it,
# before anything is downloaded (so an unwritable directory costs no download).
prepare_install_dir() {
    if [ ! -d "$km_dir" ]; then
        if [ -e "$km_dir" ]; then
            not_writable "it is not a directory"
        fi
        if ! mkdir -p "$km_dir" 2>/dev/null; then
            not_writable "it does not exist and cannot be created"
        fi
    fi
    if [ -d "$km_dir/$km_bin" ]; then
        err "$km_dir/$km_bin is a directory: remove it or choose another --install-dir"
    fi
    # The temporary directory lives in the target directory so the final step is a rename.
    if check_cmd mktemp; then
        km_tmp=$(mktemp -d "$km_dir/.km-install.XXXXXX" 2>/dev/null) || km_tmp=""
    else
        km_tmp="$km_dir/.km-install.$$"
        mkdir -m 700 "$km_tmp" 2>/dev/null || km_tmp=""
    fi
    if [ -z "$km_tmp" ] || [ ! -d "$km_tmp" ]; then
        km_tmp=""
        if [ -w "$km_dir" ]; then
            not_writable "cannot create a file in it"
        fi
        not_writable "permission denied"
    fi
}

cleanup() {
    if [ -n "${km_tmp:-}" ]; then
        rm -rf "$km_tmp" 2>/dev/null
        km_tmp=""
    fi
}

# on_signal STATUS NAME: clean up and exit. The EXIT trap is dropped first: mksh would
# otherwise exit with the EXIT trap's status (0) instead of STATUS.
on_signal() {
    cleanup
    trap - EXIT
    printf '%serror:%s interrupted (SIG%s): nothing was installed\n' "$_c_red" "$_c_reset" "$2" >&2
    exit "$1"
}

# ----------------------------------------------------------------------------
# sources

# cdn_resolve_version: sets km_version from <base>/version; status 1 (with _dl_*) on failure.
cdn_resolve_version() {
    if ! download "$base_url/version" "$km_tmp/version"; then
        _dl_reason="$base_url/version: $_dl_reason"
        return 1
    fi
    _cv_line=""
    IFS= read -r _cv_line <"$km_tmp/version" || true
    _cv_cr=$(printf '\r')
    _cv_line=${_cv_line%"$_cv_cr"}
    while :; do
        case "$_cv_line" in
            *" ") _cv_line=${_cv_line%?} ;;
            *) break ;;
        esac
    done
    if ! normalise_version "$_cv_line"; then
        _dl_class=garbled
        _dl_reason="$base_url/version does not hold a version"
        return 1
    fi
    km_version=$_nv_version
}

# fetch FROM: download the asset and its .sha256 from FROM (a URL prefix) into km_tmp.
fetch() {
    km_asset_url="$1/$km_asset"
    if ! download "$km_asset_url.sha256" "$km_tmp/asset.sha256"; then
        _dl_reason="$km_asset_url.sha256: $_dl_reason"
        return 1
    fi
    say "downloading $km_asset_url"
    if ! download "$km_asset_url" "$km_tmp/$km_bin"; then
        _dl_reason="$km_asset_url: $_dl_reason"
        return 1
    fi
}

# fail_download SOURCE-NAME: the error line for a download that failed for good.
fail_download() {
    if [ "$km_cdn_class" = missing ] && [ -n "$opt_version" ] && [ "$_dl_class" != missing ]; then
        # The CDN's 404 is the news; GitHub being unreachable only means it could not be confirmed.
        err "km $opt_version for $km_os/$km_arch is not published on the CDN ($km_cdn_reason), and GitHub could not be asked ($_dl_reason)"
    fi
    case "$_dl_class" in
        missing)
            if [ -n "$opt_version" ]; then
                err "km $opt_version for $km_os/$km_arch is not published ($_dl_reason${km_cdn_note}); releases: ${gh_base}/${GITHUB_REPOSITORY}/releases"
            fi
            err "km for $km_os/$km_arch was not found at $1 ($_dl_reason${km_cdn_note})"
            ;;
        interrupted) err "the download from $1 broke off ($_dl_reason): nothing was installed; re-run to try again" ;;
        network) err "cannot reach $1 ($_dl_reason${km_cdn_note}): check the network connection or proxy" ;;
        *) err "download from $1 failed ($_dl_reason${km_cdn_note})" ;;
    esac
}

from_cdn() {
    if [ -z "$opt_version" ]; then
        cdn_resolve_version || return 1
    else
        km_version=$opt_version
    fi
    say "installing km $km_version for $km_os/$km_arch from $base_url"
    fetch "$base_url/releases/$km_version"
}

from_github() {
    if [ -n "$opt_version" ]; then
        km_version=$opt_version
        _fg_from="$gh_base/$GITHUB_REPOSITORY/releases/download/$km_version"
        say "installing km $km_version for $km_os/$km_arch from GitHub"
    else
        km_version=""
        _fg_from="$gh_base/$GITHUB_REPOSITORY/releases/latest/download"
        say "installing the latest km for $km_os/$km_arch from GitHub"
    fi
    fetch "$_fg_from"
}

download_release() {
    km_cdn_note=""
    km_cdn_class=""
    km_cdn_reason=""
    case "$opt_source" in
        cdn)
            from_cdn || fail_download "the CDN $base_url"
            ;;
        github)
            from_github || fail_download "GitHub $gh_base"
            ;;
        auto)
            if ! from_cdn; then
                if ! can_fall_back; then
                    fail_download "the CDN $base_url"
                fi
                warn "the CDN failed ($_dl_reason); trying GitHub releases"
                km_cdn_note="; the CDN failed too"
                km_cdn_class=$_dl_class
                km_cdn_reason=$_dl_reason
                from_github || fail_download "GitHub $gh_base"
            fi
            ;;
    esac
}

# ----------------------------------------------------------------------------
# verification and installation

verify() {
    _vf_line=""
    IFS= read -r _vf_line <"$km_tmp/asset.sha256" || true
    _vf_want=${_vf_line%%[!0-9a-fA-F]*}
    case "$_vf_line" in
        "$_vf_want" | "$_vf_want "* | "$_vf_want	"*) ;;
        *) _vf_want="" ;;
    esac
    if [ ${#_vf_want} -ne 64 ]; then
        err "cannot verify $km_asset: $km_asset_url.sha256 is not a SHA-256 checksum file; refusing to install"
    fi
    lowercase_hex "$_vf_want"
    _vf_want=$_lh_value
    if ! sha256_of "$km_tmp/$km_bin"; then
        err "cannot verify $km_asset: $km_hasher failed; refusing to install"
    fi
    if [ "$_sh_sum" != "$_vf_want" ]; then
        err "checksum mismatch for $km_asset from $km_asset_url: expected sha256 $_vf_want, got $_sh_sum; refusing to install (not retried from another source)"
    fi
    say "verified sha256 $_sh_sum"
}

install_binary() {
    ensure chmod 755 "$km_tmp/$km_bin"
    if ! mv -f "$km_tmp/$km_bin" "$km_dir/$km_bin" 2>/dev/null; then
        not_writable "cannot replace $km_dir/$km_bin"
    fi
    say "installed $km_dir/$km_bin"
}

# check_path: advice when the directory is not on PATH, a warning when another km comes first.
check_path() {
    _cp_rest="${PATH:-}:"
    _cp_found=no
    _cp_shadow=""
    while [ -n "$_cp_rest" ]; do
        _cp_p=${_cp_rest%%:*}
        _cp_rest=${_cp_rest#*:}
        strip_slashes "$_cp_p"
        _cp_p=${_ss_value:-/}
        if [ "$_cp_p" = "$km_dir" ]; then
            _cp_found=yes
            break
        fi
        if [ -z "$_cp_shadow" ] && [ -n "$_cp_p" ] && [ -f "$_cp_p/$km_bin" ] && [ -x "$_cp_p/$km_bin" ]; then
            _cp_shadow="$_cp_p/$km_bin"
        fi
    done
    if [ "$_cp_found" = no ]; then
        warn "$km_dir is not on your PATH: add it, e.g. echo 'export PATH=\"$km_dir:\$PATH\"' >> ~/.profile, then open a new shell"
    elif [ -n "$_cp_shadow" ]; then
        warn "another km at $_cp_shadow comes earlier on PATH and will run instead of $km_dir/$km_bin: remove it or reorder PATH"
    fi
}

run_installed() {
    if ! "$km_dir/$km_bin" --version; then
        err "$km_dir/$km_bin was installed but '$km_dir/$km_bin --version' failed; report it at ${gh_base}/${GITHUB_REPOSITORY}/issues"
    fi
}

# ----------------------------------------------------------------------------

main() {
    set -u
    setup_colors
    km_tmp=""
    trap cleanup EXIT
    trap 'on_signal 129 HUP' HUP
    trap 'on_signal 130 INT' INT
    trap 'on_signal 143 TERM' TERM

    # ${1+"$@"}: posh (and old shells) call an empty "$@" unset under set -u.
    parse_args ${1+"$@"}

    strip_slashes "${KM_BASE_URL:-$DEFAULT_BASE_URL}"
    base_url=$_ss_value
    strip_slashes "${KM_GITHUB_BASE_URL:-$KM_DEFAULT_GITHUB_BASE_URL}"
    gh_base=$_ss_value
    if [ "$opt_source" != github ]; then
        check_url "KM_BASE_URL" "$base_url"
    fi
    if [ "$opt_source" != cdn ]; then
        check_url "KM_GITHUB_BASE_URL" "$gh_base"
    fi

    detect_platform
    pick_downloader
    pick_hasher
    need_cmd mkdir
    need_cmd chmod
    need_cmd mv
    need_cmd rm

    choose_install_dir
    prepare_install_dir
    download_release
    verify
    install_binary
    check_path
    run_installed
    cleanup
}

main "$@" || exit 1
