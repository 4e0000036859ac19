#!/bin/sh
# shellcheck shell=sh
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
TRUSTED_SSH_KEYS="ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNcG1g9KZkAAVfJu4XCBzNyYTeUCgS5wbNRNKN+cAgtv9HGHzANrVgaMwdMvHB+MXJ0yHNuwSnB3yqrzlpHGOjQ=
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBD5SlPe+ziCvBXdVVfTfdM/t/7NvkbCh7i3JqMssVJ8zJaL/Gq/xC7RQiksY8hk4Gn/Thdp0dDt2fjk+cjUHk4="
# --- end of release settings ---

KM_DEFAULT_GITHUB_BASE_URL="https://github.com"

# Bounded waits and sizes (README "Installing": the numbers). A source that does not
# connect in KM_CONNECT_TIMEOUT s, or moves less than KM_STALL_RATE bytes/s over
# KM_STALL_TIME s, is down; a transfer may take KM_BASE_TIME s plus its size at
# KM_FLOOR_RATE bytes/s in all.
KM_CONNECT_TIMEOUT="10"
KM_STALL_TIME="20"
KM_STALL_RATE="1024"
KM_BASE_TIME="30"
KM_FLOOR_RATE="65536"
KM_MAX_REDIRECTS="5"
KM_MAX_VERSION_BYTES="256"
KM_MAX_SHA256_BYTES="1024"
KM_MAX_SUMS_BYTES="65536"
KM_MAX_SIG_BYTES="8192"
KM_MAX_BINARY_BYTES="104857600"
KM_RUN_TIMEOUT="10"

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
  --version V          install version V (e.g. v1.2.3) instead of the current one
  --install-dir DIR    install km into DIR (default: /usr/local/bin when writable,
                       else \$HOME/.local/bin)
  --source cdn|github  download only from the CDN or only from GitHub releases
                       (default: the CDN, falling back to GitHub when it is down)
  --require-signature  refuse to install when the release signature cannot be
                       checked here (no ssh-keygen 8.1+ and no openssl)
  -h, --help           show this help and exit; downloads nothing

environment:
  KM_VERSION           same as --version
  KM_INSTALL_DIR       same as --install-dir
  KM_INSTALL_SOURCE    same as --source
  KM_REQUIRE_SIGNATURE 1: same as --require-signature
  KM_BASE_URL          the CDN (default ${DEFAULT_BASE_URL})
  KM_GITHUB_BASE_URL   GitHub (default ${KM_DEFAULT_GITHUB_BASE_URL}); assets are at
                       <base>/${GITHUB_REPOSITORY}/releases/download/<version>/<file>
  NO_COLOR             no colours in messages

Every release's SHA256SUMS is signed; the signature is checked with ssh-keygen
(else openssl) against the keys in this script, then the download's SHA-256
against SHA256SUMS and its .sha256. Anything that does not verify is refused and
never retried from another source. The new km must answer --version before it
replaces an earlier one. Plain http:// is only accepted for loopback addresses.
The installer never prompts.
EOF
}

# ----------------------------------------------------------------------------
# arguments

parse_args() {
    opt_version="${KM_VERSION:-}"
    opt_dir="${KM_INSTALL_DIR:-}"
    opt_source="${KM_INSTALL_SOURCE:-}"
    opt_require_sig=no
    case "${KM_REQUIRE_SIGNATURE:-}" in
        "" | 0 | no | false) ;;
        *) opt_require_sig=yes ;;
    esac
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
            --require-signature)
                opt_require_sig=yes
                shift
                ;;
            -y | --yes)
                # Accepted for scripts written for other installers: km never prompts.
                shift
                ;;
            *)
                sanitise "$1" 40
                err "unknown option '$_sn_text' (see --help)"
                ;;
        esac
    done
    case "$opt_source" in
        "" | auto) opt_source=auto ;;
        cdn | github) ;;
        *)
            sanitise "$opt_source" 40
            err "unknown source '$_sn_text': use --source cdn or --source github"
            ;;
    esac
    if [ -n "$opt_version" ] && [ "$opt_version" != "latest" ]; then
        if ! normalise_version "$opt_version"; then
            sanitise "$opt_version" 40
            err "'$_sn_text' is not a version: use the form v1.2.3 (or v1.2.3-rc.1)"
        fi
        opt_version=$_nv_version
    else
        opt_version=""
    fi
}

# normalise_version V: sets _nv_version to vMAJOR.MINOR.PATCH[-PRE] (a leading v added
# when V starts with a digit); status 1 when V is not one.
normalise_version() {
    case "$1" in
        [0123456789]*) is_version "v$1" ;;
        *) is_version "$1" ;;
    esac
}

# is_version V: status 0 when V is exactly the version grammar (ASCII only):
# v(0|[1-9][0-9]*).(0|[1-9][0-9]*).(0|[1-9][0-9]*)(-PRE)?, PRE dot-separated
# identifiers of [0-9A-Za-z-], numeric ones without leading zeros. Sets _nv_version.
is_version() {
    _nv_version=$1
    case "$_nv_version" in
        v*) ;;
        *) return 1 ;;
    esac
    _nv_rest=${_nv_version#v}
    case "$_nv_rest" in
        *-*)
            _nv_core=${_nv_rest%%-*}
            version_ids "${_nv_rest#*-}" pre || return 1
            ;;
        *) _nv_core=$_nv_rest ;;
    esac
    case "$_nv_core" in
        *.*.*.*) return 1 ;;
        *.*.*) version_ids "$_nv_core" core ;;
        *) return 1 ;;
    esac
}

# version_ids LIST core|pre: each dot-separated identifier of LIST is numeric without
# leading zeros (core), or [0-9A-Za-z-]+ and, when numeric, without leading zeros (pre).
version_ids() {
    _vi_rest="$1."
    while [ -n "$_vi_rest" ]; do
        _vi_id=${_vi_rest%%.*}
        _vi_rest=${_vi_rest#*.}
        case "$_vi_id" in
            "") return 1 ;;
            *[!0123456789]*)
                [ "$2" = pre ] || return 1
                case "$_vi_id" in
                    *[!0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-]*) return 1 ;;
                esac
                ;;
            0?*) return 1 ;;
        esac
    done
    return 0
}

# sanitise TEXT MAX: sets _sn_text to TEXT with every byte outside printable ASCII
# replaced by '?' and cut to MAX characters (server text never reaches a terminal raw).
sanitise() {
    _sn_text=$(printf '%s' "$1" | tr -c ' -~' '?' | cut -c "1-$2")
    if [ ${#1} -gt "$2" ]; then
        _sn_text="$_sn_text..."
    fi
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

# url_ok URL: status 0 for https://, and for http:// on a loopback host only.
url_ok() {
    case "$1" in
        https://?*) return 0 ;;
        http://?*)
            url_host "$1"
            is_loopback_host "$_uh_host"
            return
            ;;
    esac
    return 1
}

# check_url WHAT URL: https always; http only on loopback; nothing else.
check_url() {
    if url_ok "$2"; then
        return 0
    fi
    sanitise "$2" 100
    case "$2" in
        http://?*) err "refusing plain http:// for $1 ($_sn_text): use https://; http:// is only accepted for loopback (127.0.0.1, localhost, [::1])" ;;
    esac
    err "$1 must be an https:// URL, not '$_sn_text'"
}

# ----------------------------------------------------------------------------
# platform

detect_platform() {
    # One uname for both (its last word is the machine).
    _dp_sm=$(uname -sm 2>/dev/null) || _dp_sm=""
    _dp_s=${_dp_sm% *}
    _dp_m=${_dp_sm##* }
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

# pick_hasher: the fastest present (openssl uses the CPU's SHA instructions, coreutils does
# not; shasum is perl).
pick_hasher() {
    if check_cmd openssl; then
        km_hasher=openssl
    elif check_cmd sha256sum; then
        km_hasher=sha256sum
    elif check_cmd shasum; then
        km_hasher=shasum
    else
        err "cannot verify downloads: none of sha256sum, shasum or openssl is installed; install one of them and re-run"
    fi
}

# hash_start FILE: hash FILE in the background (into $km_tmp/hash.out) while other checks
# run; sha256_of FILE then waits for it. cleanup ends it.
hash_start() {
    case "$km_hasher" in
        sha256sum) sha256sum <"$1" >"$km_tmp/hash.out" 2>/dev/null 3>&- & ;;
        shasum) shasum -a 256 <"$1" >"$km_tmp/hash.out" 2>/dev/null 3>&- & ;;
        openssl) openssl dgst -sha256 <"$1" >"$km_tmp/hash.out" 2>/dev/null 3>&- & ;;
    esac
    km_hash_pid=$!
    km_hash_file=$1
}

# hash_cancel: end hash_start's hasher (SIGPIPE: bash reports no job ended by it) and forget
# its result: the file will be fetched again, or km_tmp is about to go (the hasher then
# creates nothing in it afterwards).
hash_cancel() {
    if [ -n "${km_hash_pid:-}" ]; then
        kill -PIPE "$km_hash_pid" 2>/dev/null
        wait "$km_hash_pid" 2>/dev/null
        km_hash_pid=""
        km_hash_file=""
    fi
}

# sha256_of FILE: sets _sh_sum to the lowercase hex SHA-256 of FILE; status 1 on failure.
sha256_of() {
    if [ -n "$km_hash_pid" ] && [ "$km_hash_file" = "$1" ]; then
        # Its own pid: ksh93 counts the watchdog among this shell's jobs, and a plain wait
        # would wait for it.
        wait "$km_hash_pid" 2>/dev/null
        km_hash_pid=""
        _sh_out=""
        IFS= read -r _sh_out <"$km_tmp/hash.out" || true
    else
        case "$km_hasher" in
            sha256sum) _sh_out=$(sha256sum <"$1" 2>/dev/null) || return 1 ;;
            shasum) _sh_out=$(shasum -a 256 <"$1" 2>/dev/null) || return 1 ;;
            openssl) _sh_out=$(openssl dgst -sha256 <"$1" 2>/dev/null) || return 1 ;;
        esac
    fi
    case "$km_hasher" in
        openssl) _sh_out=${_sh_out##*= } ;;
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

# file_size FILE: sets _fs_size to the size of FILE in bytes (0 when it does not exist).
file_size() {
    _fs_size=0
    if [ -f "$1" ]; then
        _fs_size=$(wc -c <"$1" 2>/dev/null) || _fs_size=0
        _fs_size=$((_fs_size + 0))
    fi
}

# remove FILE...: rm -f FILE..., run only when one of them is there (a fresh temporary
# directory needs no rm).
remove() {
    for _rm_f do
        if [ -e "$_rm_f" ] || [ -h "$_rm_f" ]; then
            rm -f "$@"
            return 0
        fi
    done
}

# dest_size PATH: sets _fs_size to the size of a file, or to the sum of the files in a directory.
dest_size() {
    if [ -d "$1" ]; then
        _ds_sum=0
        for _ds_f in "$1"/*; do
            file_size "$_ds_f"
            _ds_sum=$((_ds_sum + _fs_size))
        done
        _fs_size=$_ds_sum
    else
        file_size "$1"
    fi
}

# watchdog: one for the whole install, in the background, beside each command run by
# supervised (wget's transfers, curl's where the shell has no ulimit, the new km --version
# where there is no timeout; job N: its settings in $km_tmp/job.N, the pid in $km_tmp/pid.N
# once it runs; it follows the newest). It is started by the first of them only. Once a
# second it checks the running job, and kills it (SIGTERM, then SIGKILL) when DEST grows
# past MAXBYTES, when it runs longer than CAP s (for a wget download: KM_BASE_TIME s, then
# KM_BASE_TIME s plus the size the server announced in HEADERS at KM_FLOOR_RATE bytes/s),
# or (STALL=yes) when DEST grows by less than KM_STALL_RATE bytes/s over KM_STALL_TIME s.
# The reason goes to $km_tmp/watchdog.N. It ends when km_tmp or the installer is gone.
watchdog() {
    trap - EXIT HUP INT TERM
    _wd_job=0
    _wd_pid=""
    while :; do
        sleep 1
        # The installer has ended (cleanup removed km_tmp, or it was killed): so does the
        # watchdog ($$ is the installer's pid in a subshell too).
        [ -d "$km_tmp" ] && kill -0 "$$" 2>/dev/null || return 0
        _wd_new=$_wd_job
        while [ -f "$km_tmp/pid.$((_wd_new + 1))" ]; do
            _wd_new=$((_wd_new + 1))
        done
        if [ "$_wd_new" != "$_wd_job" ]; then
            _wd_job=$_wd_new
            _wd_pid=""
            _wd_t=0
            _wd_mark=0
            _wd_sized=no
            {
                IFS= read -r _wd_dest && IFS= read -r _wd_hdr && IFS= read -r _wd_max &&
                    IFS= read -r _wd_stall && IFS= read -r _wd_cap
            } <"$km_tmp/job.$_wd_job" || _wd_job=$((_wd_job - 1))
        else
            _wd_t=$((_wd_t + 1))
        fi
        [ "$_wd_job" -gt 0 ] || continue
        if [ -z "$_wd_pid" ]; then
            IFS= read -r _wd_pid <"$km_tmp/pid.$_wd_job" 2>/dev/null || _wd_pid=""
            [ -n "$_wd_pid" ] || continue
        fi
        kill -0 "$_wd_pid" 2>/dev/null || continue
        watch_job
        if [ -n "$_wd_why" ]; then
            printf '%s\n' "$_wd_why" >"$km_tmp/watchdog.$_wd_job"
            kill "$_wd_pid" 2>/dev/null
            sleep 1
            kill -9 "$_wd_pid" 2>/dev/null
            _wd_pid=""
        fi
    done
}

# watch_job: the watchdog's check of the running job at second _wd_t; sets _wd_why.
watch_job() {
    _wd_why=""
    dest_size "$_wd_dest"
    if [ "$_wd_t" -ge "$KM_BASE_TIME" ] && [ "$_wd_sized" = no ] && [ -f "$_wd_hdr" ]; then
        # Past the small-file time: the size the server announced sets the cap.
        while IFS= read -r _wd_l; do
            case "$_wd_l" in
                *[Cc]ontent-[Ll]ength:*)
                    _wd_n=${_wd_l#*: }
                    _wd_n=${_wd_n%%[!0123456789]*}
                    if [ -n "$_wd_n" ] && [ ${#_wd_n} -lt 12 ]; then
                        _wd_cap=$((KM_BASE_TIME + _wd_n / KM_FLOOR_RATE))
                        _wd_sized=yes
                    fi
                    ;;
            esac
        done <"$_wd_hdr"
    fi
    if [ "$_fs_size" -gt "$_wd_max" ]; then
        _wd_why=oversize
    elif [ "$_wd_t" -ge "$_wd_cap" ]; then
        _wd_why="took longer than ${_wd_cap} s"
    elif [ "$_wd_stall" = yes ] && [ "$_wd_t" -gt 0 ] && [ $((_wd_t % KM_STALL_TIME)) -eq 0 ]; then
        if [ $((_fs_size - _wd_mark)) -lt $((KM_STALL_TIME * KM_STALL_RATE)) ]; then
            _wd_why="stalled: under $KM_STALL_RATE bytes/s for $KM_STALL_TIME s"
        fi
        _wd_mark=$_fs_size
    fi
}

# started COMMAND...: in a subshell that writes its own pid (the first field of
# /proc/self/stat, read by the subshell itself) to _sv_pidf, then execs COMMAND: a fork, not
# the fork and exec of `sh -c`. Where there is no /proc, or the subshell is not a process of
# its own (ksh93 runs some in the shell itself: its pid is then $$), `sh -c` does it.
started() {
    (
        # fd 3 (the installer's stderr, kept for a signal's message) is closed here, in the
        # subshell: on the function call it would be closed in this shell too while a trap runs.
        exec 3>&-
        trap - EXIT HUP INT TERM
        _st_pid=""
        if [ -r /proc/self/stat ]; then
            IFS=' ' read -r _st_pid _st_rest </proc/self/stat || _st_pid=""
        fi
        case "$_st_pid" in
            "" | *[!0123456789]* | "$$") exec sh -c 'echo "$$" >"$0" && exec "$@"' "$_sv_pidf" "$@" ;;
        esac
        echo "$_st_pid" >"$_sv_pidf" && exec "$@"
    )
}

# supervised DEST HEADERS MAXBYTES STALL CAP COMMAND...: run COMMAND in the foreground
# under the watchdog (job km_seq: its settings, pid and reason files are new, numbered
# ones: nothing stale to remove); sets _sv_rc (its exit status) and _sv_why (why the
# watchdog ended it, or ""). The command is started by `sh -c` that writes its pid, then
# execs it: no background job to `wait` for (posh misreads `wait PID` when its script comes
# on stdin). The watchdog is started once, by a subshell that leaves it running (not a job
# of this shell, so `wait` never waits for it), with no EXIT trap (bash runs an inherited
# one, cleanup: rm -rf km_tmp, in a background subshell ended before it has reset it);
# cleanup ends it with SIGPIPE (no trap of ours; bash reports nothing for it).
supervised() {
    km_seq=$((km_seq + 1))
    _sv_pidf="$km_tmp/pid.$km_seq"
    km_wd_file="$km_tmp/watchdog.$km_seq"
    printf '%s\n' "$1" "$2" "$3" "$4" "$5" >"$km_tmp/job.$km_seq" || no_space
    if [ -z "$km_watchdog" ]; then
        trap - EXIT
        (watchdog </dev/null >/dev/null 2>&1 3>&- & echo "$!" >"$km_tmp/watchdog.pid")
        trap cleanup EXIT
        IFS= read -r km_watchdog <"$km_tmp/watchdog.pid" || km_watchdog=""
    fi
    shift 5
    if [ "$km_sv_shell" = yes ]; then
        sh -c 'echo "$$" >"$0" && exec "$@"' "$_sv_pidf" "$@" 3>&-
    else
        started "$@"
    fi
    _sv_rc=$?
    _sv_why=""
    if [ -f "$km_wd_file" ]; then
        IFS= read -r _sv_why <"$km_wd_file" || true
    fi
}

# curl_get URL DEST MAXBYTES: download_curl's curl for one transfer (no redirect followed:
# the status, size and redirect in download.out, its stderr in _dl_log).
curl_get() {
    curl_run "$2" "$3" $((KM_BASE_TIME + $3 / KM_FLOOR_RATE)) --proto '=http,https' --fail --silent --show-error \
        --connect-timeout "$KM_CONNECT_TIMEOUT" --speed-limit "$KM_STALL_RATE" --speed-time "$KM_STALL_TIME" \
        --max-time $((KM_BASE_TIME + $3 / KM_FLOOR_RATE)) --max-filesize "$3" \
        --output "$2" --write-out '%{http_code} %{size_download} %{redirect_url}' \
        "$1" >"$km_tmp/download.out" 2>"$km_tmp/download.log" </dev/null
}

# version_prestart: the first transfer of /version (download's) starts now, in the
# background (km_early_pid), so that mkfifo and the start of fast_prestart's curl overlap it;
# curl_run collects it.
version_prestart() {
    km_early_pid=""
    if [ "$km_fast_ok" = yes ]; then
        km_early=yes
        curl_get "$base_url/version" "$km_tmp/version" "$KM_MAX_VERSION_BYTES"
        km_early=no
    fi
}

# curl_run DEST MAXBYTES CAP ARGS...: curl ARGS in the foreground; sets _sv_rc and _sv_why
# (oversize, or ""). curl bounds its own waits (connect, stall, --max-time CAP) and a body
# the server announced over --max-filesize; a body with no announced size is stopped by the
# file size limit (ulimit -f, in 512-byte blocks) of curl's subshell: SIGXFSZ past
# MAXBYTES. Where the shell has no ulimit (posh), the watchdog does it (supervised).
curl_run() {
    _cu_dest=$1
    _cu_max=$2
    _cu_cap=$3
    shift 3
    if [ "$km_ulimit" = no ]; then
        supervised "$_cu_dest" /dev/null "$_cu_max" no "$_cu_cap" curl "$@"
        return 0
    fi
    if [ "$km_early" = yes ]; then
        # version_prestart: in the background, with the same redirections.
        curl_exec "$_cu_max" "$@" &
        km_early_pid=$!
        return 0
    fi
    if [ -n "$km_early_pid" ]; then
        # This transfer was started by version_prestart (always the next one run).
        wait "$km_early_pid"
        curl_status $?
        km_early_pid=""
        return 0
    fi
    (curl_exec "$_cu_max" "$@")
    curl_status $?
}

# curl_exec MAXBYTES ARGS...: in the subshell it is called in, exec curl ARGS with no file
# growing past MAXBYTES.
curl_exec() {
    # fd 3 closed here, in the subshell (as in started).
    exec 3>&-
    # No core file of a curl ended by SIGXFSZ (-c: every shell here that has ulimit).
    # shellcheck disable=SC3045
    ulimit -c 0 2>/dev/null
    ulimit -f $(($1 / 512 + 1)) 2>/dev/null
    shift
    exec curl "$@"
}

# curl_status STATUS: _sv_rc, and _sv_why=oversize for a curl ended by SIGXFSZ.
curl_status() {
    _sv_rc=$1
    _sv_why=""
    case "$_sv_rc" in
        # SIGXFSZ: 128 + 25, ksh93 256 + 25, yash 384 + 25.
        153 | 281 | 409) _sv_why=oversize ;;
    esac
}

# download URL DEST MAXBYTES [HOPS]: status 0 when the whole body (at most MAXBYTES) is in DEST
# (HOPS: URL is where that many redirects already led; it is checked as they are).
# Sets _dl_trail (every URL a redirect led to, space-separated). Otherwise sets
# _dl_class (missing: a 404; server: a 5xx; network: no connection, a stall or a
# timeout; interrupted: the transfer broke off; oversize; insecure: a redirect to plain
# http off loopback, or too many; disk: no space left; other) and _dl_reason (for
# people, sanitised).
download() {
    _dl_class=""
    _dl_reason=""
    _dl_trail=""
    _dl_log="$km_tmp/download.log"
    _dl_hops=${4:-0}
    if [ "$_dl_hops" -eq 0 ]; then
        check_url "download URL" "$1"
    fi
    _dl_size=""
    if [ -z "$km_early_pid" ]; then
        remove "$2"
    fi
    case "$km_downloader" in
        curl) download_curl "$@" ;;
        *) download_wget "$@" ;;
    esac
    _dl_rc=$?
    if [ "$_dl_rc" -eq 0 ]; then
        # curl says how much it wrote (--write-out); wget does not.
        if [ -n "$_dl_size" ]; then
            _fs_size=$_dl_size
        else
            file_size "$2"
        fi
        if [ "$_fs_size" -le "$3" ]; then
            return 0
        fi
        _dl_class=oversize
    fi
    if [ "$_dl_class" = oversize ]; then
        _dl_reason="larger than $3 bytes"
    fi
    if [ -z "$_dl_reason" ]; then
        _dl_reason="$km_downloader exit $_dl_rc"
    fi
    sanitise "$_dl_reason" 160
    _dl_reason=$_sn_text
    rm -f "$2"
    return 1
}

# download_curl URL DEST MAXBYTES: redirects followed here, one hop at a time, so each
# target is checked (https, or loopback http) before anything connects to it.
download_curl() {
    _dc_url=$1
    _dc_hops=$_dl_hops
    while :; do
        if ! url_ok "$_dc_url"; then
            sanitise "$_dc_url" 100
            _dl_class=insecure
            _dl_reason="redirected to $_sn_text: only https:// (or loopback http://) is followed"
            return 1
        fi
        curl_get "$_dc_url" "$2" "$3"
        _dc_out=""
        IFS= read -r _dc_out <"$km_tmp/download.out" || true
        _dc_code=${_dc_out%% *}
        _dc_next=${_dc_out#"$_dc_code"}
        _dc_next=${_dc_next# }
        _dc_size=${_dc_next%% *}
        _dc_next=${_dc_next#"$_dc_size"}
        _dc_next=${_dc_next# }
        if [ -n "$_sv_why" ]; then
            classify_watchdog "$_sv_why" "$3"
            return 1
        fi
        case "$_sv_rc:$_dc_code" in
            0:30[12378])
                if [ -n "$_dc_next" ]; then
                    _dc_hops=$((_dc_hops + 1))
                    if [ "$_dc_hops" -gt "$KM_MAX_REDIRECTS" ]; then
                        _dl_class=insecure
                        _dl_reason="more than $KM_MAX_REDIRECTS redirects"
                        return 1
                    fi
                    _dl_trail="$_dl_trail $_dc_next"
                    _dc_url=$_dc_next
                    continue
                fi
                ;;
            0:*)
                case "$_dc_size" in
                    "" | *[!0123456789]*) ;;
                    *) _dl_size=$_dc_size ;;
                esac
                return 0
                ;;
        esac
        break
    done
    [ "$_sv_rc" -eq 0 ] && return 0
    curl_failure "$_dc_code"
    return 1
}

# curl_failure HTTP-CODE: _dl_class and _dl_reason of a curl that ended with status _sv_rc
# (its stderr in _dl_log).
curl_failure() {
    last_line "$_dl_log"
    _dl_reason=${_ll_line#curl: }
    case "$_sv_rc" in
        22)
            _dl_reason="HTTP $1"
            case "$1" in
                404) _dl_class=missing ;;
                5[0-9][0-9]) _dl_class=server ;;
                *) _dl_class=other ;;
            esac
            ;;
        5 | 6 | 7 | 28 | 35 | 52) _dl_class=network ;;
        18 | 56 | 92) _dl_class=interrupted ;;
        23) _dl_class=disk ;;
        63) _dl_class=oversize ;;
        *) _dl_class=other ;;
    esac
}

# classify_watchdog WHY MAXBYTES: the class and reason of a transfer the watchdog (or, for
# curl, SIGXFSZ: oversize) ended.
classify_watchdog() {
    case "$1" in
        oversize) _dl_class=oversize ;;
        *)
            _dl_class=network
            _dl_reason=$1
            ;;
    esac
}

# download_wget URL DEST MAXBYTES: GNU wget bounds its own connect and read waits;
# busybox wget has no usable timeout option (-T crashes its 1.35 build), so the
# watchdog also ends a stalled transfer. Redirects are checked in the -S headers.
download_wget() {
    _dw_cap=$((KM_BASE_TIME + $3 / KM_FLOOR_RATE))
    # The watchdog reads the log wget writes (its Content-Length): SC2094 is intended.
    if [ "$km_downloader" = gnu-wget ]; then
        # shellcheck disable=SC2094
        supervised "$2" "$_dl_log" "$3" yes "$_dw_cap" wget --tries=1 --connect-timeout="$KM_CONNECT_TIMEOUT" --dns-timeout="$KM_CONNECT_TIMEOUT" \
            --read-timeout="$KM_STALL_TIME" --max-redirect="$KM_MAX_REDIRECTS" \
            --server-response --progress=dot:giga -O "$2" "$1" 2>"$_dl_log" </dev/null
    else
        # shellcheck disable=SC2094
        supervised "$2" "$_dl_log" "$3" yes "$_dw_cap" wget -q -S -O "$2" "$1" 2>"$_dl_log" </dev/null
    fi
    _dw_text=""
    _dw_hops=0
    if [ -f "$_dl_log" ]; then
        while IFS= read -r _dw_l || [ -n "$_dw_l" ]; do
            _dw_text="$_dw_text $_dw_l"
            case "$_dw_l" in
                "  "[Ll]ocation:*)
                    _dw_to=${_dw_l#*ocation: }
                    _dw_hops=$((_dw_hops + 1))
                    _dl_trail="$_dl_trail $_dw_to"
                    case "$_dw_to" in
                        /*) ;;
                        *)
                            if ! url_ok "$_dw_to"; then
                                sanitise "$_dw_to" 100
                                _dl_class=insecure
                                _dl_reason="redirected to $_sn_text: only https:// (or loopback http://) is followed"
                            fi
                            ;;
                    esac
                    ;;
            esac
        done <"$_dl_log"
    fi
    if [ -n "$_dl_class" ]; then
        return 1
    fi
    if [ -n "$_sv_why" ]; then
        classify_watchdog "$_sv_why" "$3"
        return 1
    fi
    if [ "$_dw_hops" -gt "$KM_MAX_REDIRECTS" ]; then
        _dl_class=insecure
        _dl_reason="more than $KM_MAX_REDIRECTS redirects"
        return 1
    fi
    [ "$_sv_rc" -eq 0 ] && return 0
    last_line "$_dl_log"
    _dl_reason=${_ll_line#wget: }
    case "$_dw_text" in
        *"o space left"*)
            _dl_class=disk
            ;;
        *"timed out"*)
            _dl_class=network
            _dl_reason="timed out: nothing for $KM_STALL_TIME s"
            ;;
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
            *"etwork is unreachable"* | *"o route to host"* | *"failed: "*)
            _dl_class=network
            ;;
        *)
            _dl_class=other
            ;;
    esac
    if [ "$_sv_rc" -gt 128 ] && [ "$_dl_class" = other ]; then
        # busybox 1.35 wget dies of SIGSEGV on a refused connection.
        _dl_class=network
        _dl_reason="wget died (exit $_sv_rc): no connection"
    fi
    return 1
}

# The failures after which the GitHub fallback may be tried: the CDN is out (or a
# captive portal answers for it), not lying: a checksum or signature failure never
# gets here.
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
            \~ | \~/*)
                if [ -z "${HOME:-}" ]; then
                    sanitise "$opt_dir" 80
                    err "--install-dir '$_sn_text' starts with ~ but HOME is not set: give the full path"
                fi
                ;;
        esac
        case "$km_dir" in
            \~) km_dir=$HOME ;;
            \~/*) km_dir="$HOME/${km_dir#??}" ;;
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

# read_only_fs: status 0 when writing in km_dir fails because its file system is read-only.
read_only_fs() {
    _ro_msg=$(mkdir "$km_dir/.km-install-probe.$$" 2>&1) && rmdir "$km_dir/.km-install-probe.$$" 2>/dev/null
    case "$_ro_msg" in
        *"ead-only file system"*) return 0 ;;
    esac
    return 1
}

# no_space: the line for a full disk.
no_space() {
    err "no space left on the device of $km_dir: free some space, or choose a directory on another file system with --install-dir DIR; nothing was installed"
}

# remove_stale_temps: the temporary directories of earlier runs that were killed
# (.km-install.<pid>.<random>, where <pid> no longer runs).
remove_stale_temps() {
    for _rs_d in "$km_dir"/.km-install.*; do
        [ -d "$_rs_d" ] || continue
        _rs_pid=${_rs_d##*/.km-install.}
        _rs_pid=${_rs_pid%%.*}
        case "$_rs_pid" in
            "" | *[!0123456789]*) ;;
            *)
                if kill -0 "$_rs_pid" 2>/dev/null; then
                    continue
                fi
                ;;
        esac
        rm -rf "$_rs_d" 2>/dev/null
    done
}

# prepare_install_dir: make the directory and the private temporary directory in it,
# before anything is downloaded (so an unwritable directory costs no download).
prepare_install_dir() {
    if [ ! -d "$km_dir" ]; then
        if [ -e "$km_dir" ]; then
            not_writable "it is not a directory"
        fi
        _pd_msg=$(mkdir -p "$km_dir" 2>&1) || {
            case "$_pd_msg" in
                *"ead-only file system"*) err "cannot create $km_dir: its file system is read-only; choose a directory on a writable one with --install-dir DIR" ;;
            esac
            not_writable "it does not exist and cannot be created"
        }
    fi
    if [ -d "$km_dir/$km_bin" ]; then
        err "$km_dir/$km_bin is a directory: remove it or choose another --install-dir"
    fi
    remove_stale_temps
    # The temporary directory lives in the target directory so the final step is a rename.
    if check_cmd mktemp; then
        km_tmp=$(mktemp -d "$km_dir/.km-install.$$.XXXXXX" 2>/dev/null) || km_tmp=""
    else
        km_tmp="$km_dir/.km-install.$$.0"
        mkdir -m 700 "$km_tmp" 2>/dev/null || km_tmp=""
    fi
    if [ -z "$km_tmp" ] || [ ! -d "$km_tmp" ]; then
        km_tmp=""
        if read_only_fs; then
            err "cannot write to $km_dir: its file system is read-only; choose a directory on a writable one with --install-dir DIR"
        fi
        if [ -w "$km_dir" ]; then
            not_writable "cannot create a file in it"
        fi
        not_writable "permission denied"
    fi
}

cleanup() {
    # The installer's own exit only: bash runs the EXIT trap in a background job killed before
    # it has started its command (there $BASHPID is not $$); that must not end the install.
    # shellcheck disable=SC3028
    [ "${BASHPID:-$$}" = "$$" ] || return 0
    fast_cancel
    if [ -n "${km_early_pid:-}" ]; then
        kill "$km_early_pid" 2>/dev/null
        wait "$km_early_pid" 2>/dev/null
        km_early_pid=""
    fi
    if [ -n "${km_watchdog:-}" ]; then
        kill -PIPE "$km_watchdog" 2>/dev/null
        km_watchdog=""
    fi
    hash_cancel
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
    printf '%serror:%s interrupted (SIG%s): nothing was installed\n' "$_c_red" "$_c_reset" "$2" >&3
    exit "$1"
}

# ----------------------------------------------------------------------------
# sources

# cdn_resolve_version: sets km_version from <base>/version; status 1 (with _dl_*) on failure.
cdn_resolve_version() {
    if ! download "$base_url/version" "$km_tmp/version" "$KM_MAX_VERSION_BYTES"; then
        if [ "$_dl_class" = oversize ]; then
            _dl_class=garbled
        fi
        _dl_reason="$base_url/version: $_dl_reason"
        return 1
    fi
    _cv_line=""
    IFS= read -r _cv_line <"$km_tmp/version" || true
    _cv_line=${_cv_line%"$km_cr"}
    while :; do
        case "$_cv_line" in
            *" ") _cv_line=${_cv_line%?} ;;
            *) break ;;
        esac
    done
    if ! is_version "$_cv_line"; then
        sanitise "$_cv_line" 40
        _dl_class=garbled
        _dl_reason="$base_url/version does not hold a version ('$_sn_text')"
        return 1
    fi
    km_version=$_nv_version
    km_want=$km_version
}

# fetch_fast FROM: with curl, SHA256SUMS, its signature, the asset's .sha256 and the asset
# come in one curl (one connection, each file within its own cap and time, no watchdog:
# see curl_run); curl stops at the first transfer that fails or is not a 200 (a redirect is not
# followed: the asset's redirect is then followed by download). The signature is checked
# once the small files are in, before anything else is said about the asset (which is
# never checked, run or kept unless it verifies). Status 0: all four are in km_tmp, the
# signature verified; 1: a transfer failed (an HTTP error, no connection, a stall, a
# timeout: _dl_* say which file and why, as download does); 2: a small file was redirected
# or over its cap: fetch then takes the files one at a time (their own rules and messages).
fetch_fast() {
    set -- "$1/SHA256SUMS" "$1/SHA256SUMS.$km_sig_ext" "$1/$km_asset.sha256" "$km_asset_url"
    for _ff_u do
        check_url "download URL" "$_ff_u"
    done
    _dl_log="$km_tmp/fast.log"
    remove "$km_tmp/SHA256SUMS" "$km_tmp/signature" "$km_tmp/asset.sha256" "$km_tmp/$km_bin"
    if [ -n "$km_fast_pid" ] && ! running "$km_fast_pid"; then
        # It ended before reading its URLs (writing them would then wait forever).
        fast_cancel
    fi
    if [ -n "$km_fast_pid" ]; then
        # Started while /version came (fast_prestart): its URLs through the FIFOs.
        printf 'url = "%s"\n' "$1" "$2" "$3" >"$km_tmp/fast.1" || no_space
        printf 'url = "%s"\n' "$4" >"$km_tmp/fast.2" || no_space
        wait "$km_fast_pid"
        curl_status $?
        km_fast_pid=""
    else
        printf 'url = "%s"\n' "$1" "$2" "$3" >"$km_tmp/fast.1" || no_space
        printf 'url = "%s"\n' "$4" >"$km_tmp/fast.2" || no_space
        (fast_exec) >"$km_tmp/fast.out" 2>"$_dl_log" </dev/null
        curl_status $?
    fi
    # The asset's hash (checked only after the signature) starts before anything else once
    # curl says every transfer came: on two busy cores the hasher is the longest step left.
    # Only on a file that is there (a redirect's empty body may make none): the job's failed
    # redirection would print to the terminal.
    if [ "$_sv_rc" -eq 0 ] && [ -f "$km_tmp/$km_bin" ]; then
        hash_start "$km_tmp/$km_bin"
    fi
    fast_results
    if [ -z "$_sv_why" ] && [ "$_sv_rc" -eq 0 ] && [ "$_ff_n" -eq 4 ]; then
        verify_signature "$2" || return 1
        # While the hash is still being computed (never run before it matches).
        make_executable
        return 0
    fi
    # Not this asset after all: the file will be fetched again, its hash with it.
    hash_cancel
    # The transfer that failed: the first one not whole, else the one in progress when curl
    # was ended (SIGXFSZ), else the one curl stopped at (the last it reported).
    if [ "$_ff_bad" -eq 4 ]; then
        if [ -n "$_sv_why" ] || [ "$_sv_rc" -eq 0 ]; then
            _ff_bad=$_ff_n
        elif [ "$_ff_n" -gt 0 ]; then
            _ff_bad=$((_ff_n - 1))
        else
            _ff_bad=0
        fi
    fi
    if [ "$_ff_bad" -lt 3 ]; then
        fast_small_failed "$@"
        return
    fi
    # The small files came whole: the signature first, as one at a time.
    verify_signature "$2" || return 1
    fast_asset_failed
}

# fast_exec: in the subshell it is called in, exec fetch_fast's curl: SHA256SUMS, its
# signature and the .sha256 (the URLs in $km_tmp/fast.1), then the asset (fast.2). Each
# file within the sum of the caps on disk (curl_exec); one over its own cap is seen in its
# size_download (fast_results).
fast_exec() {
    _fe_max=$((KM_MAX_SUMS_BYTES + KM_MAX_SIG_BYTES + KM_MAX_SHA256_BYTES))
    curl_exec $((_fe_max + KM_MAX_BINARY_BYTES + 65536)) \
        --proto '=http,https' --fail --fail-early --location --max-redirs 0 --silent --show-error \
        --connect-timeout "$KM_CONNECT_TIMEOUT" --speed-limit "$KM_STALL_RATE" --speed-time "$KM_STALL_TIME" \
        --max-time $((KM_BASE_TIME + _fe_max / KM_FLOOR_RATE)) --max-filesize "$KM_MAX_SUMS_BYTES" \
        --write-out '%{http_code} %{size_download}\n' \
        -o "$km_tmp/SHA256SUMS" -o "$km_tmp/signature" -o "$km_tmp/asset.sha256" -K "$km_tmp/fast.1" \
        --next --proto '=http,https' --fail --silent --show-error \
        --connect-timeout "$KM_CONNECT_TIMEOUT" --speed-limit "$KM_STALL_RATE" --speed-time "$KM_STALL_TIME" \
        --max-time $((KM_BASE_TIME + KM_MAX_BINARY_BYTES / KM_FLOOR_RATE)) --max-filesize "$KM_MAX_BINARY_BYTES" \
        --write-out '%{http_code} %{size_download} %{redirect_url}\n' \
        -o "$km_tmp/$km_bin" -K "$km_tmp/fast.2"
}

# fast_prestart: when fetch_fast will run after /version (curl, the CDN first, no
# --version), its curl starts now, in the background, and waits for its URLs on two FIFOs
# (fast.1, fast.2) that fetch_fast writes once /version has named the release: curl's
# start (its libraries: ~8 ms) overlaps the /version transfer. Sets km_fast_pid ("": not
# started; fast_cancel ends it when fetch_fast does not run). Only where /proc tells whether
# it has ended (running): writing the URLs to one that ended unseen would wait forever.
fast_prestart() {
    km_fast_pid=""
    if [ "$km_fast_ok" = yes ] && [ -r /proc/self/stat ] && check_cmd mkfifo &&
        mkfifo "$km_tmp/fast.1" "$km_tmp/fast.2" 2>/dev/null; then
        fast_exec >"$km_tmp/fast.out" 2>"$km_tmp/fast.log" </dev/null &
        km_fast_pid=$!
    fi
}

# running PID: status 1 when the background job PID has ended (where /proc tells, a zombie
# not yet waited for counts as ended).
running() {
    kill -0 "$1" 2>/dev/null || return 1
    _ru_stat=""
    IFS= read -r _ru_stat <"/proc/$1/stat" 2>/dev/null || return 0
    _ru_stat=${_ru_stat##*") "}
    case "$_ru_stat" in
        Z* | X*) return 1 ;;
    esac
    return 0
}

# fast_cancel: end fast_prestart's curl (still waiting for its URLs) and its FIFOs.
fast_cancel() {
    if [ -n "${km_fast_pid:-}" ]; then
        kill "$km_fast_pid" 2>/dev/null
        wait "$km_fast_pid" 2>/dev/null
        km_fast_pid=""
        rm -f "$km_tmp/fast.1" "$km_tmp/fast.2"
    fi
}

# fast_results: from fetch_fast's download.out, _ff_n (how many transfers curl reported),
# _ff_bad (the first that is not a 200 within its cap, 4 when none), _ff_code (its HTTP
# status), _ff_next (where it redirected to) and _ff_big (yes when it was over its cap).
fast_results() {
    _ff_n=0
    _ff_bad=4
    _ff_code=000
    _ff_big=no
    while IFS=' ' read -r _ff_c _ff_size _ff_next; do
        case "$_ff_n" in
            0) _ff_lim=$KM_MAX_SUMS_BYTES ;;
            1) _ff_lim=$KM_MAX_SIG_BYTES ;;
            2) _ff_lim=$KM_MAX_SHA256_BYTES ;;
            *) _ff_lim=$KM_MAX_BINARY_BYTES ;;
        esac
        case "$_ff_size" in
            "" | *[!0-9]*) _ff_big=yes ;;
            *) [ "$_ff_size" -le "$_ff_lim" ] || _ff_big=yes ;;
        esac
        if [ "$_ff_c" != 200 ] || [ "$_ff_big" = yes ]; then
            _ff_bad=$_ff_n
            _ff_code=$_ff_c
            return 0
        fi
        _ff_n=$((_ff_n + 1))
        _ff_code=$_ff_c
    done <"$km_tmp/fast.out"
}

# fast_small_failed SUMS-URL SIG-URL SHA256-URL: fetch_fast's status when transfer _ff_bad
# (a small file) failed: 2 for a redirect or a body over a cap, else 1 with _dl_* set.
fast_small_failed() {
    case "$_sv_why:$_sv_rc:$_ff_big" in
        oversize:* | :63:* | *:yes | :47:*) return 2 ;;
    esac
    # As one at a time: a signature that came is checked before the .sha256 fails.
    if [ "$_ff_bad" -eq 2 ]; then
        verify_signature "$2" || return 1
    fi
    _ff_i=$_ff_bad
    shift "$_ff_i"
    if [ -n "$_sv_why" ]; then
        classify_watchdog "$_sv_why" 0
    else
        curl_failure "$_ff_code"
    fi
    sanitise "$_dl_reason" 160
    _dl_reason=$_sn_text
    if [ "$_ff_i" -eq 1 ] && [ "$_dl_class" = missing ]; then
        err "km $km_version has no signature ($1: $_dl_reason): refusing to install (not retried from another source)"
    fi
    _dl_reason="$1: $_dl_reason"
    return 1
}

# fast_asset_failed: fetch_fast's status when the asset (after the small files) failed:
# redirected, the redirect is followed by download (one hop taken, each next one checked);
# else 1 with _dl_* set, as download would.
fast_asset_failed() {
    remove "$km_tmp/$km_bin"
    case "$_sv_why:$_sv_rc:$_ff_big:$_ff_code" in
        :0:no:30[12378])
            if [ -n "$_ff_next" ]; then
                set -- "$_ff_next" 1
            else
                set -- "$km_asset_url" 0
            fi
            if ! download "$1" "$km_tmp/$km_bin" "$KM_MAX_BINARY_BYTES" "$2"; then
                _dl_reason="$km_asset_url: $_dl_reason"
                return 1
            fi
            return 0
            ;;
        oversize:* | :63:* | *:yes:*)
            _dl_class=oversize
            _dl_reason="larger than $KM_MAX_BINARY_BYTES bytes"
            ;;
        *)
            if [ -n "$_sv_why" ]; then
                classify_watchdog "$_sv_why" "$KM_MAX_BINARY_BYTES"
            else
                curl_failure "$_ff_code"
            fi
            ;;
    esac
    [ -n "$_dl_reason" ] || _dl_reason="curl exit $_sv_rc"
    sanitise "$_dl_reason" 160
    _dl_reason="$km_asset_url: $_sn_text"
    return 1
}

# fetch FROM SOURCE: download the release's SHA256SUMS and its signature (checked at once),
# then the asset's .sha256 and the asset, from FROM (the URL prefix of release km_version)
# of SOURCE (cdn or github).
fetch() {
    km_asset_url="$1/$km_asset"
    say "downloading $km_asset_url"
    # The CDN's files are not redirected (GitHub's always are): one connection for all
    # four when curl can.
    if [ "$2" = cdn ] && [ "$km_fast_ok" = yes ] && [ "$km_verifier" != none ]; then
        fetch_fast "$1"
        case $? in
            0) return 0 ;;
            1) return 1 ;;
        esac
    fi
    fast_cancel
    fetch_each "$1" || return 1
    if ! download "$km_asset_url" "$km_tmp/$km_bin" "$KM_MAX_BINARY_BYTES"; then
        _dl_reason="$km_asset_url: $_dl_reason"
        return 1
    fi
}

# fetch_each FROM: SHA256SUMS, its signature (checked at once) and the asset's .sha256, one
# download each.
fetch_each() {
    if ! download "$1/SHA256SUMS" "$km_tmp/SHA256SUMS" "$KM_MAX_SUMS_BYTES"; then
        _dl_reason="$1/SHA256SUMS: $_dl_reason"
        return 1
    fi
    if [ "$km_verifier" != none ]; then
        if ! download "$1/SHA256SUMS.$km_sig_ext" "$km_tmp/signature" "$KM_MAX_SIG_BYTES"; then
            if [ "$_dl_class" = missing ]; then
                err "km $km_version has no signature ($1/SHA256SUMS.$km_sig_ext: $_dl_reason): refusing to install (not retried from another source)"
            fi
            _dl_reason="$1/SHA256SUMS.$km_sig_ext: $_dl_reason"
            return 1
        fi
        verify_signature "$1/SHA256SUMS.$km_sig_ext" || return 1
    fi
    if ! download "$km_asset_url.sha256" "$km_tmp/asset.sha256" "$KM_MAX_SHA256_BYTES"; then
        _dl_reason="$km_asset_url.sha256: $_dl_reason"
        return 1
    fi
}

# fail_download SOURCE-NAME: the error line for a download that failed for good.
fail_download() {
    if [ "$km_cdn_class" = missing ] && [ -n "$km_want" ] && [ "$_dl_class" != missing ]; then
        # The CDN's 404 is the news; GitHub being unreachable only means it could not be confirmed.
        err "km $km_want for $km_os/$km_arch is not published on the CDN ($km_cdn_reason), and GitHub could not be asked ($_dl_reason)"
    fi
    case "$_dl_class" in
        missing)
            if [ -n "$km_want" ]; then
                err "km $km_want for $km_os/$km_arch is not published ($_dl_reason${km_cdn_note}); releases: ${gh_base}/${GITHUB_REPOSITORY}/releases"
            fi
            err "km for $km_os/$km_arch was not found at $1 ($_dl_reason${km_cdn_note})"
            ;;
        interrupted) err "the download from $1 broke off ($_dl_reason): nothing was installed; re-run to try again" ;;
        network) err "cannot reach $1 ($_dl_reason${km_cdn_note}): check the network connection or proxy" ;;
        disk) no_space ;;
        oversize) err "refusing a download from $1 ($_dl_reason${km_cdn_note}): nothing was installed" ;;
        insecure) err "refusing a download from $1 ($_dl_reason${km_cdn_note}): nothing was installed" ;;
        *) err "download from $1 failed ($_dl_reason${km_cdn_note})" ;;
    esac
}

from_cdn() {
    if [ -z "$km_want" ]; then
        version_prestart
        fast_prestart
        cdn_resolve_version || return 1
    fi
    km_version=$km_want
    say "installing km $km_version for $km_os/$km_arch from $base_url"
    fetch "$base_url/releases/$km_version" cdn
}

# github_latest: sets km_version to GitHub's latest release, read from where
# releases/latest/download/SHA256SUMS redirects to (.../releases/download/<v>/SHA256SUMS).
github_latest() {
    if ! download "$gh_base/$GITHUB_REPOSITORY/releases/latest/download/SHA256SUMS" "$km_tmp/SHA256SUMS" "$KM_MAX_SUMS_BYTES"; then
        _dl_reason="$gh_base/$GITHUB_REPOSITORY/releases/latest/download/SHA256SUMS: $_dl_reason"
        return 1
    fi
    _gl_rest="$_dl_trail "
    km_version=""
    while [ -n "$_gl_rest" ]; do
        _gl_url=${_gl_rest%% *}
        _gl_rest=${_gl_rest#* }
        case "$_gl_url" in
            */releases/download/*/SHA256SUMS)
                _gl_v=${_gl_url##*/releases/download/}
                _gl_v=${_gl_v%/SHA256SUMS}
                if is_version "$_gl_v"; then
                    km_version=$_gl_v
                fi
                ;;
        esac
    done
    if [ -z "$km_version" ]; then
        err "cannot tell which version GitHub's latest release is (releases/latest/download/SHA256SUMS was not redirected to a version); install one by name with --version"
    fi
}

from_github() {
    fast_cancel
    if [ -n "$km_want" ]; then
        km_version=$km_want
    else
        github_latest || return 1
    fi
    say "installing km $km_version for $km_os/$km_arch from GitHub"
    fetch "$gh_base/$GITHUB_REPOSITORY/releases/download/$km_version" github
}

download_release() {
    km_cdn_note=""
    km_cdn_class=""
    km_cdn_reason=""
    km_want=$opt_version
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
# signatures

# pick_verifier: km_verifier is ssh (ssh-keygen -Y verify, OpenSSH 8.1+), openssl, or
# none (then km_verifier_why says why); km_sig_ext the signature file it checks. An
# ssh-keygen older than 8.1 is not probed for here: its verify says so, and openssl (with
# SHA256SUMS.p256) takes over then (ssh_too_old).
pick_verifier() {
    km_verifier=none
    km_sig_ext=""
    km_verifier_why="neither ssh-keygen (OpenSSH 8.1 or later) nor openssl is installed"
    if [ -z "$TRUSTED_KEYS" ]; then
        km_verifier_why="this copy of the installer carries no release keys"
        return 0
    fi
    if check_cmd ssh-keygen; then
        km_verifier=ssh
        km_sig_ext=sig
    elif check_cmd openssl && check_cmd cat; then
        km_verifier=openssl
        km_sig_ext=p256
    fi
}

# announce_verifier: without a verifier, one warning (or, when a signature is required, the refusal).
announce_verifier() {
    if [ "$km_verifier" != none ]; then
        return 0
    fi
    if [ "$opt_require_sig" = yes ]; then
        err "cannot check the release signature: $km_verifier_why; install OpenSSH's ssh-keygen or openssl, or drop --require-signature (KM_REQUIRE_SIGNATURE) to install on the checksum alone"
    fi
    if [ -z "$TRUSTED_KEYS" ]; then
        warn "not checking the release signature: $km_verifier_why; installing on the SHA-256 checksum alone"
        return 0
    fi
    warn "not checking the release signature: $km_verifier_why (install OpenSSH's ssh-keygen or openssl); installing on the SHA-256 checksum alone"
}

# write_keys: each PEM of TRUSTED_KEYS into $km_tmp/key<N>.pem; sets km_key_count.
write_keys() {
    km_key_count=0
    _wk_file=""
    while IFS= read -r _wk_line; do
        case "$_wk_line" in
            "-----BEGIN PUBLIC KEY-----")
                km_key_count=$((km_key_count + 1))
                _wk_file="$km_tmp/key$km_key_count.pem"
                : >"$_wk_file" || no_space
                ;;
        esac
        if [ -n "$_wk_file" ]; then
            printf '%s\n' "$_wk_line" >>"$_wk_file" || no_space
        fi
        case "$_wk_line" in
            "-----END PUBLIC KEY-----") _wk_file="" ;;
        esac
    done <<EOF
$TRUSTED_KEYS
EOF
}

# ssh_verify: _vs_ok=yes when ssh-keygen -Y verify accepts the signature with one of the
# trusted keys (their OpenSSH form, TRUSTED_SSH_KEYS), old when this ssh-keygen has no -Y
# (OpenSSH before 8.1), else no.
ssh_verify() {
    while IFS= read -r _vs_key; do
        if [ -n "$_vs_key" ]; then
            printf '%s %s\n' "$KEY_PRINCIPAL" "$_vs_key" || no_space
        fi
    done >"$km_tmp/allowed_signers" <<EOF
$TRUSTED_SSH_KEYS
EOF
    if [ ! -s "$km_tmp/allowed_signers" ]; then
        err "cannot check the release signature: ssh-keygen cannot read this installer's release keys (its release settings hold no OpenSSH form of them); refusing to install"
    fi
    _vs_ok=no
    if ssh-keygen -Y verify -f "$km_tmp/allowed_signers" -I "$KEY_PRINCIPAL" -n "km-release-$km_version" \
        -s "$km_tmp/signature" <"$km_tmp/SHA256SUMS" >/dev/null 2>"$km_tmp/verify.err"; then
        _vs_ok=yes
        return 0
    fi
    _vs_msg=""
    while IFS= read -r _vs_l || [ -n "$_vs_l" ]; do
        _vs_msg="$_vs_msg $_vs_l"
    done <"$km_tmp/verify.err"
    case "$_vs_msg" in
        *"illegal option"* | *"unknown option"* | *"invalid option"*) _vs_ok=old ;;
    esac
}

# openssl_verify: _vs_ok=yes when openssl accepts the signature of the statement with one of
# the trusted keys (PEM), else no.
openssl_verify() {
    write_keys
    _vs_ok=no
    _vs_n=1
    { printf 'km-release-%s\n' "$km_version" && cat "$km_tmp/SHA256SUMS"; } >"$km_tmp/statement" || no_space
    while [ "$_vs_n" -le "$km_key_count" ] && [ "$_vs_ok" = no ]; do
        if openssl dgst -sha256 -verify "$km_tmp/key$_vs_n.pem" -signature "$km_tmp/signature" \
            "$km_tmp/statement" </dev/null >/dev/null 2>&1; then
            _vs_ok=yes
        fi
        _vs_n=$((_vs_n + 1))
    done
}

# ssh_too_old SIG-URL: ssh-keygen has no -Y verify: openssl checks SHA256SUMS.p256 (fetched
# now; _vs_url its URL), or, without openssl, nothing (announce_verifier warns, or refuses).
# Status 1 (with _dl_*) when that download fails.
ssh_too_old() {
    km_verifier=none
    if ! check_cmd openssl || ! check_cmd cat; then
        announce_verifier
        return 0
    fi
    km_verifier=openssl
    km_sig_ext=p256
    _vs_url="${1%.sig}.p256"
    if ! download "$_vs_url" "$km_tmp/signature" "$KM_MAX_SIG_BYTES"; then
        if [ "$_dl_class" = missing ]; then
            err "km $km_version has no signature ($_vs_url: $_dl_reason): refusing to install (not retried from another source)"
        fi
        _dl_reason="$_vs_url: $_dl_reason"
        return 1
    fi
}

# verify_signature SIG-URL: the signature of SHA256SUMS, for release km_version, by one of
# the trusted keys; anything else ends the install (a red flag, never a fallback). Status 1
# (with _dl_*) only when an ssh-keygen before 8.1 sent for SHA256SUMS.p256 and it did not come.
verify_signature() {
    _vs_url=$1
    _vs_ok=no
    if [ "$km_verifier" = ssh ]; then
        ssh_verify
        if [ "$_vs_ok" = old ]; then
            ssh_too_old "$1" || return 1
        fi
    fi
    case "$km_verifier" in
        none) return 0 ;;
        openssl) openssl_verify ;;
    esac
    if [ "$_vs_ok" != yes ]; then
        err "the signature $_vs_url does not verify for km $km_version with this installer's release keys (a bad signature, an unknown key, or another release's): refusing to install (not retried from another source)"
    fi
    say "verified the release signature of km $km_version ($km_verifier)"
}

# ----------------------------------------------------------------------------
# verification and installation

# checksum_line LINE NAME: status 0 when LINE is "<64 hex>  NAME" (or " *NAME"); sets
# _cl_hash (lowercase) and _cl_name.
checksum_line() {
    _cl_line=$1
    _cl_line=${_cl_line%"$km_cr"}
    _cl_hash=${_cl_line%%[!0123456789abcdefABCDEF]*}
    [ ${#_cl_hash} -eq 64 ] || return 1
    _cl_name=${_cl_line#"$_cl_hash"}
    case "$_cl_name" in
        "  "?* | " *"?*) _cl_name=${_cl_name#??} ;;
        *) return 1 ;;
    esac
    lowercase_hex "$_cl_hash"
    _cl_hash=$_lh_value
}

# sums_entry: sets _se_hash to the SHA256SUMS line of km_asset; refuses a malformed file.
sums_entry() {
    _se_hash=""
    while IFS= read -r _se_line || [ -n "$_se_line" ]; do
        [ -n "$_se_line" ] || continue
        if ! checksum_line "$_se_line"; then
            err "cannot verify $km_asset: SHA256SUMS of km $km_version is not a checksum list; refusing to install"
        fi
        if [ "$_cl_name" = "$km_asset" ]; then
            if [ -n "$_se_hash" ]; then
                err "cannot verify $km_asset: SHA256SUMS of km $km_version lists it twice; refusing to install"
            fi
            _se_hash=$_cl_hash
        fi
    done <"$km_tmp/SHA256SUMS"
    if [ -z "$_se_hash" ]; then
        err "cannot verify $km_asset: SHA256SUMS of km $km_version does not list it; refusing to install"
    fi
}

# side_entry: sets _sd_hash from the asset's .sha256: exactly one line, for km_asset.
side_entry() {
    _sd_hash=""
    while IFS= read -r _sd_line || [ -n "$_sd_line" ]; do
        [ -n "$_sd_line" ] || continue
        if [ -n "$_sd_hash" ] || ! checksum_line "$_sd_line"; then
            err "cannot verify $km_asset: $km_asset_url.sha256 is not a SHA-256 checksum file; refusing to install"
        fi
        if [ "$_cl_name" != "$km_asset" ]; then
            sanitise "$_cl_name" 60
            err "cannot verify $km_asset: $km_asset_url.sha256 is the checksum of '$_sn_text', not of $km_asset; refusing to install"
        fi
        _sd_hash=$_cl_hash
    done <"$km_tmp/asset.sha256"
    if [ -z "$_sd_hash" ]; then
        err "cannot verify $km_asset: $km_asset_url.sha256 is not a SHA-256 checksum file; refusing to install"
    fi
}

verify() {
    sums_entry
    side_entry
    if [ "$_se_hash" != "$_sd_hash" ]; then
        err "cannot verify $km_asset: SHA256SUMS says sha256 $_se_hash but $km_asset.sha256 says $_sd_hash; refusing to install (not retried from another source)"
    fi
    if ! sha256_of "$km_tmp/$km_bin"; then
        err "cannot verify $km_asset: $km_hasher failed; refusing to install"
    fi
    if [ "$_sh_sum" != "$_se_hash" ]; then
        err "checksum mismatch for $km_asset from $km_asset_url: expected sha256 $_se_hash, got $_sh_sum; refusing to install (not retried from another source)"
    fi
    say "verified sha256 $_sh_sum"
}

# run_new FILE: run FILE --version (at most KM_RUN_TIMEOUT s); sets _rn_rc, _rn_timeout and _rn_first.
run_new() {
    _rn_timeout=no
    if check_cmd timeout; then
        # coreutils' (124 when it ended the command) or busybox's (the command's own status:
        # SIGTERM). Not a shell's exec: how shells exec a file that is not a program (wrong
        # CPU, truncated) differs, and the messages here rely on execvp's (as dash's).
        timeout "$KM_RUN_TIMEOUT" "$1" --version >"$km_tmp/run.out" 2>&1 </dev/null 3>&-
        _rn_rc=$?
        case "$_rn_rc" in
            124 | 143 | 271 | 399) _rn_timeout=yes ;;
        esac
    else
        # Without timeout (macOS), the watchdog; through `sh -c` as above.
        km_sv_shell=yes
        supervised /dev/null /dev/null 0 no "$KM_RUN_TIMEOUT" "$1" --version >"$km_tmp/run.out" 2>&1 </dev/null
        km_sv_shell=no
        _rn_rc=$_sv_rc
        [ -n "$_sv_why" ] && _rn_timeout=yes
    fi
    _rn_first=""
    IFS= read -r _rn_first <"$km_tmp/run.out" || true
}

# check_runs: the new binary, still at its temporary path, must answer --version with
# the expected version before it replaces anything; otherwise the earlier km stays.
check_runs() {
    run_new "$km_tmp/$km_bin"
    case "$_rn_first" in
        "$BINARY_NAME $km_version" | "$BINARY_NAME $km_version "*)
            [ "$_rn_rc" -eq 0 ] && [ "$_rn_timeout" = no ] && return 0
            ;;
    esac
    _cr_keep="nothing was replaced"
    if [ -e "$km_dir/$km_bin" ]; then
        _cr_keep="the earlier $km_dir/$km_bin is kept"
    fi
    if [ "$_rn_timeout" = yes ]; then
        err "the new km $km_version did not answer --version within $KM_RUN_TIMEOUT s: $_cr_keep"
    fi
    if [ "$_rn_rc" -eq 126 ]; then
        printf '#!/bin/sh\nexit 0\n' >"$km_tmp/probe" && chmod 755 "$km_tmp/probe"
        if ! "$km_tmp/probe" 2>/dev/null; then
            err "$km_dir is on a file system mounted noexec: programs cannot run from it; choose another directory with --install-dir DIR ($_cr_keep)"
        fi
    fi
    sanitise "$_rn_first" 60
    err "the new km $km_version does not run on this $km_os/$km_arch machine (--version: exit $_rn_rc, '$_sn_text'): $_cr_keep; report it at ${gh_base}/${GITHUB_REPOSITORY}/issues"
}

# make_executable: chmod 755 the downloaded binary, once.
make_executable() {
    if [ "$km_executable" = no ]; then
        ensure chmod 755 "$km_tmp/$km_bin"
        km_executable=yes
    fi
}

install_binary() {
    make_executable
    check_runs
    if ! mv -f "$km_tmp/$km_bin" "$km_dir/$km_bin" 2>/dev/null; then
        not_writable "cannot replace $km_dir/$km_bin"
    fi
    say "installed $km_dir/$km_bin"
    say "$_rn_first"
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

# ----------------------------------------------------------------------------

main() {
    set -u
    # fd 3: the installer's stderr, for a signal's message (it may arrive while a transfer's
    # stderr goes to a log).
    exec 3>&2
    setup_colors
    km_tmp=""
    km_seq=0
    km_sv_shell=no
    km_wd_file=""
    # A carriage return, made once (a command substitution forks): a server's CRLF lines.
    km_cr=$(printf '\r')
    km_watchdog=""
    km_hash_pid=""
    km_hash_file=""
    km_ulimit=no
    km_executable=no
    km_fast_pid=""
    km_early=no
    km_early_pid=""
    if check_cmd ulimit; then
        km_ulimit=yes
    fi
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
    for _m_cmd in mkdir chmod mv rm wc sleep kill tr cut; do
        need_cmd "$_m_cmd"
    done
    pick_verifier
    announce_verifier
    # One curl for the release's four files (fetch_fast): curl, a verifier, ulimit, and a base
    # URL that goes into curl's config as it is (no quote, backslash or control character).
    km_fast_ok=no
    if [ "$km_downloader" = curl ] && [ "$km_verifier" != none ] && [ "$km_ulimit" = yes ]; then
        case "$base_url" in
            *[\"\\]* | *[!\ -~]*) ;;
            *) km_fast_ok=yes ;;
        esac
    fi

    choose_install_dir
    prepare_install_dir
    download_release
    verify
    install_binary
    check_path
    cleanup
}

main "$@" || exit 1
