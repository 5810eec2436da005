#!/usr/bin/env bash
# Opt-in end-to-end check of pixel mode in a real terminal that draws sixels: xterm as a VT340 under a virtual X
# server. Opens the explorer on the trained tiny YOLOv8 with --graphics sixel, waits for the forward pass, takes a
# screenshot of the X screen, and checks that the visual pane holds a picture (many distinct colours, as only
# pixels give: symbols in xterm's 256 colours and text give a few dozen) and that stepping a layer and Ctrl-L draw
# it again. Needs xterm, Xvfb, xwd (x11-apps) and ImageMagick's convert:
#   apt-get install xterm xvfb x11-apps imagemagick
# Usage: [GRAPHICS=symbols] scripts/check-sixel-xterm.sh [path/to/detr-tui] [output-dir]   (symbols: the control run)
set -euo pipefail
bin=${1:-.build-test/release/detr-tui}
out=${2:-$(mktemp -d)}
for tool in xterm Xvfb xwd python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install xterm xvfb x11-apps)"; exit 2; }
done
[ -x "$bin" ] || { echo "no binary at $bin (swift build first)"; exit 2; }
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xterm_pid 2>/dev/null || true; kill $xvfb 2>/dev/null || true' EXIT
sleep 1
# A VT340 with sixels, 256 colours registers, a fixed font: 200 columns x 60 rows.
DISPLAY=$display xterm -ti vt340 -xrm 'XTerm*decTerminalID: vt340' -xrm 'XTerm*numColorRegisters: 256' \
  -xrm 'XTerm*allowSendEvents: true' -fa '' -fn fixed -geometry 200x60+0+0 \
  -e env TERM=xterm-256color "$bin" Tests/Fixtures/predict/yolo.pt --image Tests/Fixtures/predict/wide.png --imgsz 160 --graphics "${GRAPHICS:-sixel}" &
xterm_pid=$!
here=$(cd "$(dirname "$0")" && pwd)
shoot() { DISPLAY=$display xwd -root -silent > "$out/$1.xwd"; }
# The visual pane's map area (columns 92-197, rows 7-48 of the 6x13 text grid, which starts 3 px in), as PNG
# beside the count of its character cells holding three colours or more (none for text and symbols).
colours() { python3 "$here/xwd_colours.py" "$out/$1.xwd" 555 94 636 546 "$out/$1.png" 6x13; }
sleep "${WAIT:-25}"
shoot first
# Step a layer (n) and redraw (Ctrl-L) through xterm's own input: send-keys is not available, so use the X
# keyboard with xdotool when present, else only the first frame is checked.
if command -v xdotool >/dev/null; then
  win=$(DISPLAY=$display xdotool search --class xterm | head -1)
  DISPLAY=$display xdotool windowfocus --sync "$win" key n sleep 2 key ctrl+l
  sleep 3
  shoot stepped
fi
# Pixels: many cells with 3+ colours; symbols (GRAPHICS=symbols, the control): none.
want() { if [ "${GRAPHICS:-sixel}" = symbols ]; then [ "$1" -eq 0 ]; else [ "$1" -gt 100 ]; fi; }
a=$(colours first)
echo "first frame: $a cells of the map area with 3+ colours ($out/first.png)"
status=0
want "$a" || { echo "FAIL: the map area is not what ${GRAPHICS:-sixel} draws"; status=1; }
if [ -f "$out/stepped.xwd" ]; then
  b=$(colours stepped)
  echo "after n and Ctrl-L: $b cells with 3+ colours ($out/stepped.png)"
  want "$b" || { echo "FAIL: the picture was not drawn again"; status=1; }
fi
exit $status
