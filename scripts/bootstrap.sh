#!/usr/bin/env bash
# Create the course's Python environment in .venv (idempotent) and the system
# packages grading needs. Called by `make`; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# bubblewrap sandboxes the student's kernel during grading; chromium (Debian's package,
# driven through Playwright without a browser download) runs tests/test_browser.py.
MISSING=""
command -v bwrap >/dev/null 2>&1 || MISSING="bubblewrap"
[ -x /usr/bin/chromium ] || MISSING="$MISSING chromium"
if [ -n "$MISSING" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    fi
    if { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; } && command -v apt-get >/dev/null 2>&1; then
        echo "installing$MISSING (apt-get)"
        $SUDO apt-get update -qq >/dev/null
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $MISSING >/dev/null
    else
        case "$MISSING" in *bubblewrap*)
            echo "warning: bubblewrap (bwrap) is not installed; grading will refuse to run" \
                 "unless unsandboxed grading is allowed (see README). Install it with:" \
                 "sudo apt-get install bubblewrap" >&2;;
        esac
        case "$MISSING" in *chromium*)
            echo "warning: chromium is not installed; the browser test (tests/test_browser.py)" \
                 "will fail. Install it with: sudo apt-get install chromium" >&2;;
        esac
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
echo "installing the course and its dependencies into $VENV (a few minutes the first time)"
# (pip's notes about this machine's optional local package folders are dropped)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
touch "$VENV/.installed"
