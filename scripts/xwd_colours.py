#!/usr/bin/env python3
"""Counts the distinct colours of a region of an XWD screenshot (X Window Dump, 24/32-bit TrueColor, as xwd -root
writes it), and writes the region as a PNG. Standard library only.
With CELLxCELL (e.g. 6x13, and the text grid's origin at X, Y) it prints instead how many character cells of the
region hold three colours or more: text and symbol graphics have at most two per cell (a glyph's foreground and
background), a picture drawn with pixels has more wherever its own cells do not line up with the text grid.
Usage: xwd_colours.py SHOT.xwd X Y WIDTH HEIGHT [OUT.png] [CELLWxCELLH]"""
import struct
import sys
import zlib


def write_png(path, width, height, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def main():
    path, x0, y0, w, h = sys.argv[1], *map(int, sys.argv[2:6])
    data = open(path, "rb").read()
    fields = struct.unpack(">25I", data[:100])
    header_size, version, pixmap_format, depth, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    if version != 7 or bits_per_pixel != 32:
        sys.exit(f"{path}: XWD version {version}, {bits_per_pixel} bits per pixel: only version 7 with 32 bits is read")
    offset = header_size + ncolors * 12
    x1, y1 = min(width, x0 + w), min(height, y0 + h)
    colours = set()
    rows = []
    for y in range(y0, y1):
        line = data[offset + y * bytes_per_line: offset + y * bytes_per_line + width * 4]
        row = bytearray()
        for x in range(x0, x1):
            px = line[4 * x: 4 * x + 4]
            b, g, r = (px[0], px[1], px[2]) if byte_order == 0 else (px[3], px[2], px[1])
            colours.add((r, g, b))
            row += bytes((r, g, b))
        rows.append(bytes(row))
    if len(sys.argv) > 6:
        write_png(sys.argv[6], x1 - x0, y1 - y0, rows)
    if len(sys.argv) > 7:
        cw, ch = map(int, sys.argv[7].split("x"))
        many = 0
        for cy in range(0, (y1 - y0) // ch):
            for cx in range(0, (x1 - x0) // cw):
                seen = {rows[cy * ch + dy][3 * (cx * cw + dx): 3 * (cx * cw + dx) + 3] for dy in range(ch) for dx in range(cw)}
                many += len(seen) >= 3
        print(many)
        return
    print(len(colours))


if __name__ == "__main__":
    main()
