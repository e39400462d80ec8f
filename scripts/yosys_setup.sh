# Yosys for hw_offload.synth and its tests: installed from the distribution where this machine
# can (root and apt-get), else skipped with the reason. Sourced; defines ensure_yosys.
# Never fatal: without Yosys the synthesis tests skip and say why; everything else runs.
#   SETUP_UID        user id to act as (default: `id -u`; the tests set it)
#   SETUP_NO_APT=1   do not touch apt even as root
ensure_yosys() {
    if command -v yosys >/dev/null 2>&1; then
        return 0
    fi
    local uid="${SETUP_UID:-$(id -u)}"
    if [ "${SETUP_NO_APT:-0}" = "1" ]; then
        echo "[setup] yosys not found; SETUP_NO_APT=1, so not installing it: the synthesis tests will be skipped"
    elif [ "$uid" != "0" ]; then
        echo "[setup] yosys not found and not root, so not installing it (as root: apt-get install yosys): the synthesis tests will be skipped"
    elif ! command -v apt-get >/dev/null 2>&1; then
        echo "[setup] yosys not found and no apt-get here: the synthesis tests will be skipped"
    else
        echo "[setup] yosys not found: apt-get install yosys"
        # The package lists may be stale or empty on a fresh machine: update once on failure.
        if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends yosys >/dev/null 2>&1 ||
               { apt-get update -q >/dev/null 2>&1 &&
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends yosys >/dev/null 2>&1; }; }; then
            echo "[setup] warning: apt-get install yosys failed: the synthesis tests will be skipped"
        elif command -v yosys >/dev/null 2>&1; then
            local version
            version="$(yosys -V 2>/dev/null || true)"
            echo "[setup] installed ${version%%$'\n'*}"
        else
            echo "[setup] warning: apt-get installed yosys but it is not on PATH: the synthesis tests will be skipped"
        fi
    fi
}
