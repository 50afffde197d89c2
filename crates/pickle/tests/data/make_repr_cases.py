#!/usr/bin/env python3
"""Write the CPython `repr` tables of netport-pickle's `repr` module.

Usage (from crates/pickle):
    python3 tests/data/make_repr_cases.py tests/data/repr_cases.rs src/repr/printable.rs

- tests/data/repr_cases.rs: (input, repr(input)) for generated floats (as
  IEEE bits), ints (as minimal little-endian two's complement bytes), str and
  bytes, compared by `cargo test` (tests/it/cpython.rs).
- src/repr/printable.rs: the code points >= U+0080 for which
  `str.isprintable()` is false (Unicode categories C* and Z* except space),
  as inclusive ranges; `repr` escapes them.

Deterministic (fixed seed): rerunning with the same Python gives the same files.
"""
import math
import random
import struct
import sys
import unicodedata

rng = random.Random(20261202)


def rust_str(s):
    out = []
    for c in s:
        o = ord(c)
        if c in '"\\':
            out.append('\\' + c)
        elif 0x20 <= o < 0x7F:
            out.append(c)
        else:
            out.append('\\u{%x}' % o)
    return '"' + ''.join(out) + '"'


def rust_bytes(b):
    out = []
    for o in b:
        c = chr(o)
        if c in '"\\':
            out.append('\\' + c)
        elif 0x20 <= o < 0x7F:
            out.append(c)
        else:
            out.append('\\x%02x' % o)
    return 'b"' + ''.join(out) + '"'


def int_bytes(n):
    length = 0 if n == 0 else (n.bit_length() + 8) // 8
    b = n.to_bytes(length, 'little', signed=True)
    # minimal: drop redundant sign bytes
    while len(b) > 1 and ((b[-1] == 0 and b[-2] < 0x80) or (b[-1] == 0xFF and b[-2] >= 0x80)):
        b = b[:-1]
    if b == b'\x00':
        b = b''
    return b


def non_printable_ranges():
    ranges, start = [], None
    for cp in range(0x80, 0x110000):
        np_ = not chr(cp).isprintable()
        if np_ and start is None:
            start = cp
        if not np_ and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return ranges


def floats():
    fs = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324,
          2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
          0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 / 3, 1e-5, 1e-4, 0.0001, 9.999999999999999e-05,
          1e15, 1e16, 1e17, 9999999999999998.0, 1234567890123456.7, 12345678901234567.0,
          2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 63, 2.0 ** 64, 1e22, 1e23, 123.0, 1.5, 100.0,
          -2.5e-7, 0.5, 3.141592653589793, 2.718281828459045, 1e100, 1e-100, 1e308,
          1e-308, 4.9406564584124654e-324, 0.001, 0.01, 1.0, -1.0, 10.0, 1e-05, 1.5e-05,
          123456789.0, 0.000123, 1.0000000000000002, 0.9999999999999999]
    for e in range(-325, 310):
        try:
            x = float('1e%d' % e)
        except OverflowError:
            continue
        fs += [x, math.nextafter(x, math.inf)] if e % 2 else [math.nextafter(x, 0.0), -x]
    for _ in range(800):
        fs.append(struct.unpack('<d', struct.pack('<Q', rng.getrandbits(64)))[0])
    for _ in range(400):
        fs.append(round(rng.uniform(-1000, 1000), rng.randint(0, 12)))
    for _ in range(400):
        fs.append(rng.random() * 10.0 ** rng.randint(-25, 25))
    for _ in range(150):
        fs.append(float(rng.randint(-10 ** 18, 10 ** 18)))
    out, seen = [], set()
    for f in fs:
        bits = struct.unpack('<Q', struct.pack('<d', f))[0]
        if bits not in seen:
            seen.add(bits)
            out.append((bits, repr(f)))
    return out


def ints():
    ns = [0, 1, -1, 127, 128, -128, -129, 255, 256, 2 ** 31, -2 ** 31, 2 ** 63 - 1, -2 ** 63,
          2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 19, -10 ** 19]
    for k in range(0, 520, 13):
        ns += [2 ** k, 2 ** k - 1, -2 ** k, -(2 ** k) + 1, 10 ** (k // 2)]
    for _ in range(60):
        ns.append(rng.randint(-10 ** rng.randint(1, 300), 10 ** rng.randint(1, 300)))
    out, seen = [], set()
    for n in ns:
        if n not in seen:
            seen.add(n)
            out.append((int_bytes(n), repr(n)))
    return out


def strs(ranges):
    ss = ['', 'a', "'", '"', '\'"', "it's", 'say "hi"', 'both \' and "', '\\', '\\\'', '\n\r\t',
          'tab\there', 'caf\xe9', '\u20ac', '\xa0', '\xad', '\u2028', '\u200b', '\ufeff',
          '\ue000', '\u0378', '\U0001f600', '\U000e0001', '\U0010ffff', '\u4e2d\u6587',
          'e\u0301', '\x00\x01\x1f\x7f\x80\x9f', 'mixed \U0001f600 \x7f \u2028 \'"',
          'weights.0.bias', '\U00020000', '\u061c', '\U0001d173']
    ss += [chr(c) for c in range(0x80)]
    ss += [chr(c) for c in range(0x80, 0x100)]
    # Both sides of every non-printable range edge, 16 characters a string.
    edges = []
    for a, b in ranges:
        for cp in (a - 1, a, b, b + 1):
            if 0x80 <= cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF:
                edges.append(chr(cp))
    for i in range(0, len(edges), 16):
        ss.append(''.join(edges[i:i + 16]))
    for _ in range(300):
        n = rng.randint(1, 12)
        chars = []
        while len(chars) < n:
            cp = rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xFFFF), rng.randint(0x10000, 0x10FFFF)])
            if not 0xD800 <= cp <= 0xDFFF:
                chars.append(chr(cp))
        ss.append(''.join(chars))
    return [(s, repr(s)) for s in ss]


def byteses():
    bs = [b'', b"'", b'"', b'\'"', b"it's", b'say "hi"', b'\\', b'\n\r\t', b'PK\x03\x04',
          bytes(range(256))]
    bs += [bytes([c]) for c in range(256)]
    for _ in range(100):
        bs.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 24))))
    return [(b, repr(b)) for b in bs]


def main():
    cases_path, printable_path = sys.argv[1], sys.argv[2]
    ranges = non_printable_ranges()
    version = '%d.%d.%d' % sys.version_info[:3]
    with open(printable_path, 'w') as f:
        f.write('//! The code points from U+0080 up that CPython\'s `str.isprintable()`\n')
        f.write('//! rejects (Unicode %s, Python %s), which `repr` escapes.\n' % (unicodedata.unidata_version, version))
        f.write('// @generated by tests/data/make_repr_cases.py; do not edit.\n\n')
        f.write('/// Inclusive, sorted, disjoint ranges.\n')
        f.write('pub(super) const NON_PRINTABLE: &[(u32, u32)] = &[\n')
        for a, b in ranges:
            f.write('    (0x%x, 0x%x),\n' % (a, b))
        f.write('];\n')
    with open(cases_path, 'w') as f:
        f.write('// @generated by tests/data/make_repr_cases.py (CPython %s, Unicode %s); do not edit.\n' % (version, unicodedata.unidata_version))
        f.write('// Each entry: (input, CPython repr(input)).\n\n')
        f.write('/// f64 bits.\npub const FLOATS: &[(u64, &str)] = &[\n')
        for bits, r in floats():
            f.write('    (0x%016x, %s),\n' % (bits, rust_str(r)))
        f.write('];\n\n/// Minimal little-endian two\'s complement bytes (empty is 0).\n')
        f.write('pub const INTS: &[(&[u8], &str)] = &[\n')
        for b, r in ints():
            f.write('    (%s, %s),\n' % (rust_bytes(b), rust_str(r)))
        f.write('];\n\npub const STRS: &[(&str, &str)] = &[\n')
        for s, r in strs(ranges):
            f.write('    (%s, %s),\n' % (rust_str(s), rust_str(r)))
        f.write('];\n\npub const BYTES: &[(&[u8], &str)] = &[\n')
        for b, r in byteses():
            f.write('    (%s, %s),\n' % (rust_bytes(b), rust_str(r)))
        f.write('];\n')


if __name__ == '__main__':
    main()
