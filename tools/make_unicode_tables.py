#!/usr/bin/env python3
"""make_unicode_tables.py — writes src/tok/unicode_tables.h, the Unicode data the tokenizer normalizers
need (lowercase mapping, canonical/compatibility decompositions, combining classes, primary composites,
and the general-category classes used by BERT and the Punctuation pre-tokenizer) from Python's
unicodedata. Deterministic for one Python version; the header records the Unicode version."""
import os
import sys
import unicodedata as ud

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "tok", "unicode_tables.h")
HANGUL = range(0xAC00, 0xAC00 + 11172)
CPS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


# tokenizers classifies characters for BertNormalizer (clean_text, strip_accents), StripAccents,
# BertPreTokenizer and Punctuation with the crate unicode_categories 0.1.1, whose tables are Unicode 9.0
# (is_other: Cc, Cf, Co). These are the code points where those tables differ from the Unicode 14.0 of
# unicodedata: classes there that the crate lacks ("new"), and the reverse ("old").
OTHER_NEW = [(0x890, 0x891), (0x8E2, 0x8E2), (0x110CD, 0x110CD), (0x13430, 0x13438)]
MN_NEW = [(0x7FD, 0x7FD), (0x898, 0x89F), (0x8CA, 0x8E1), (0x9FE, 0x9FE), (0xAFA, 0xAFF), (0xB55, 0xB55), (0xC04, 0xC04),
          (0xC3C, 0xC3C), (0xD00, 0xD00), (0xD3B, 0xD3C), (0xD81, 0xD81), (0xEBA, 0xEBA), (0x180F, 0x180F), (0x1885, 0x1886),
          (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFB), (0xA82C, 0xA82C), (0xA8C5, 0xA8C5), (0xA8FF, 0xA8FF), (0xA9BD, 0xA9BD),
          (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10F46, 0x10F50), (0x10F82, 0x10F85), (0x11070, 0x11070),
          (0x11073, 0x11074), (0x110C2, 0x110C2), (0x111C9, 0x111C9), (0x111CF, 0x111CF), (0x1123E, 0x1123E),
          (0x1133B, 0x1133B), (0x11438, 0x1143F), (0x11442, 0x11444), (0x11446, 0x11446), (0x1145E, 0x1145E),
          (0x1182F, 0x11837), (0x11839, 0x1183A), (0x1193B, 0x1193C), (0x1193E, 0x1193E), (0x11943, 0x11943),
          (0x119D4, 0x119D7), (0x119DA, 0x119DB), (0x119E0, 0x119E0), (0x11A01, 0x11A0A), (0x11A33, 0x11A38),
          (0x11A3B, 0x11A3E), (0x11A47, 0x11A47), (0x11A51, 0x11A56), (0x11A59, 0x11A5B), (0x11A8A, 0x11A96),
          (0x11A98, 0x11A99), (0x11C30, 0x11C36), (0x11C38, 0x11C3D), (0x11C3F, 0x11C3F), (0x11C92, 0x11CA7),
          (0x11CAA, 0x11CB0), (0x11CB2, 0x11CB3), (0x11CB5, 0x11CB6), (0x11D31, 0x11D36), (0x11D3A, 0x11D3A),
          (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45), (0x11D47, 0x11D47), (0x11D90, 0x11D91), (0x11D95, 0x11D95),
          (0x11D97, 0x11D97), (0x11EF3, 0x11EF4), (0x16F4F, 0x16F4F), (0x16FE4, 0x16FE4), (0x1CF00, 0x1CF2D),
          (0x1CF30, 0x1CF46), (0x1E000, 0x1E006), (0x1E008, 0x1E018), (0x1E01B, 0x1E021), (0x1E023, 0x1E024),
          (0x1E026, 0x1E02A), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF), (0x1E944, 0x1E94A)]
MN_OLD = [0x1734]
P_NEW = [(0x61D, 0x61D), (0x9FD, 0x9FD), (0xA76, 0xA76), (0xC77, 0xC77), (0xC84, 0xC84), (0x1B7D, 0x1B7E), (0x2E43, 0x2E4F),
         (0x2E52, 0x2E5D), (0x10EAD, 0x10EAD), (0x10F55, 0x10F59), (0x10F86, 0x10F89), (0x1144B, 0x1144F),
         (0x1145A, 0x1145B), (0x1145D, 0x1145D), (0x11660, 0x1166C), (0x116B9, 0x116B9), (0x1183B, 0x1183B),
         (0x11944, 0x11946), (0x119E2, 0x119E2), (0x11A3F, 0x11A46), (0x11A9A, 0x11A9C), (0x11A9E, 0x11AA2),
         (0x11C41, 0x11C45), (0x11C70, 0x11C71), (0x11EF7, 0x11EF8), (0x11FFF, 0x11FFF), (0x12FF1, 0x12FF2),
         (0x16E97, 0x16E9A), (0x16FE2, 0x16FE2), (0x1E95E, 0x1E95F)]
P_OLD = [0x166D, 0x111C9]


def within(c, rs):
    return any(a <= c <= b for a, b in rs)


def ranges(pred):
    out, start = [], None
    for c in range(0x110001):
        ok = c < 0x110000 and pred(c)
        if ok and start is None:
            start = c
        elif not ok and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def arr(name, ctype, vals, per=8):
    lines = [f"static const {ctype} {name}[] = {{"]
    for i in range(0, len(vals), per):
        lines.append("    " + ", ".join(vals[i:i + per]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    lower = []
    for c in CPS:
        lo = chr(c).lower()
        if lo != chr(c) and c != 0x130:  # U+0130 lowers to two characters; handled in code
            assert len(lo) == 1, hex(c)
            lower.append((c, ord(lo)))
    ccc = [(c, ud.combining(chr(c))) for c in CPS if ud.combining(chr(c))]
    pool, canon, compat = [], [], []
    for c in CPS:
        if c in HANGUL:
            continue
        d = ud.normalize("NFD", chr(c))
        k = ud.normalize("NFKD", chr(c))
        if d != chr(c):
            canon.append((c, len(pool), len(d)))
            pool.extend(ord(x) for x in d)
        if k != d:
            compat.append((c, len(pool), len(k)))
            pool.extend(ord(x) for x in k)
    comp = []
    for c in CPS:
        if c in HANGUL:
            continue
        dec = ud.decomposition(chr(c))
        if not dec or dec.startswith("<"):
            continue
        parts = [int(x, 16) for x in dec.split()]
        if len(parts) == 2 and ud.normalize("NFC", chr(c)) == chr(c):
            comp.append((parts[0], parts[1], c))
    comp.sort()
    cat = ud.category
    tables = {  # the first three as tokenizers' unicode_categories 0.1.1 has them (see above)
        "uni_mn": ranges(lambda c: (cat(chr(c)) == "Mn" and not within(c, MN_NEW)) or c in MN_OLD),
        "uni_other": ranges(lambda c: cat(chr(c)) in ("Cc", "Cf", "Co") and not within(c, OTHER_NEW)),
        "uni_punct": ranges(lambda c: (cat(chr(c))[0] == "P" and not within(c, P_NEW)) or c in P_OLD),
        "uni_alnum": ranges(lambda c: cat(chr(c))[0] in "LN"),
        "uni_numeric": ranges(lambda c: cat(chr(c)) in ("Nd", "Nl", "No")),
    }
    assert max(n for _, _, n in canon + compat) < 32 and len(pool) < 1 << 20
    out = [f"/* unicode_tables.h — generated by tools/make_unicode_tables.py from Unicode {ud.unidata_version}"
           f" (Python {sys.version.split()[0]}); do not edit.",
           " * Sorted tables searched by binary search; decompositions are full (recursive) and index uni_pool. */",
           f'#define UNI_VERSION "{ud.unidata_version}"']
    out.append(arr("uni_lower_map", "uint32_t", [f"0x{a:X},0x{b:X}" for a, b in lower], 6))
    out.append(arr("uni_ccc", "uint32_t", [f"0x{a:X}|{b}u<<24" for a, b in ccc], 6))
    out.append(arr("uni_pool", "uint32_t", [f"0x{x:X}" for x in pool], 10))
    # entry: cp, offset << 5 | length
    out.append(arr("uni_canon", "uint32_t", [f"0x{a:X},{o}u<<5|{n}" for a, o, n in canon], 5))
    out.append(arr("uni_compat", "uint32_t", [f"0x{a:X},{o}u<<5|{n}" for a, o, n in compat], 5))
    out.append(arr("uni_comp", "uint32_t", [f"0x{a:X},0x{b:X},0x{c:X}" for a, b, c in comp], 4))
    for name, rs in tables.items():
        out.append(arr(name, "uint32_t", [f"0x{a:X},0x{b:X}" for a, b in rs], 6))
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"lower {len(lower)}, ccc {len(ccc)}, canon {len(canon)}, compat {len(compat)}, comp {len(comp)}, "
          f"pool {len(pool)}; " + ", ".join(f"{k} {len(v)}" for k, v in tables.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
