#!/usr/bin/env bash
# Debian packages the book needs, installed where this machine allows (best effort):
#   fonts-noto-cjk             Chinese labels in plots (matplotlib family "Noto Sans CJK SC");
#                              Russian labels use DejaVu Sans, which matplotlib ships
#   chromium, chromium-driver  the browser test (tests/test_book_browser.py)
# Usage: book/tools/system-deps.sh [PYTHON]   (PYTHON: rebuild its matplotlib font cache)
# Never fails the build: where apt or root is missing it says what to install and exits 0.
set -u
PY="${1:-}"
PKGS="fonts-noto-cjk chromium chromium-driver"
missing=""
for pkg in $PKGS; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
  echo "[system-deps] present: $PKGS"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[system-deps] no apt-get here: install$missing by hand (CJK plot labels and the browser"
  echo "              test need them; the browser test is skipped without them)"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "[system-deps] not root: run  sudo apt-get install$missing  (the browser test is"
  echo "              skipped and Chinese plot labels lack a font until then)"
  exit 0
fi
echo "[system-deps] installing$missing"
if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
    --no-install-recommends $missing >/tmp/system-deps-apt.log 2>&1; then
  echo "[system-deps] installed$missing"
else
  echo "[system-deps] apt-get failed (log: /tmp/system-deps-apt.log); continuing without$missing"
  exit 0
fi
case "$missing" in
  *fonts-noto-cjk*)
    # matplotlib caches its font list: rebuild it so the new fonts are found
    if [ -n "$PY" ] && [ -x "$PY" ]; then
      "$PY" -c "import matplotlib.font_manager as fm; fm._load_fontmanager(try_read_cache=False)" \
        && echo "[system-deps] matplotlib font cache rebuilt"
    fi
    ;;
esac
exit 0
