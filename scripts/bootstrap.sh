#!/usr/bin/env bash
# Installs the system libraries detr-tui builds against, if any is missing. Does nothing when all are present.
set -euo pipefail
need=()
have() { pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
have ncursesw || need+=(libncurses-dev)
have openblas || need+=(libopenblas-dev)
have chafa || need+=(libchafa-dev libglib2.0-dev)
have glib-2.0 || need+=(libglib2.0-dev)
have libpng || need+=(libpng-dev)
have libjpeg || need+=(libjpeg-dev)
have libturbojpeg || need+=(libturbojpeg0-dev)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# Direct-colour terminfo entries (xterm-direct, tmux-direct) for 24-bit colour when COLORTERM asks for it.
infocmp xterm-direct >/dev/null 2>&1 || need+=(ncurses-term)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "bootstrap: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
