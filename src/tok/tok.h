/* tok.h — internal header of the tokenizer piece: the loaded tokenizer.json (model, added tokens and the
 * trees of normalizers, pre-tokenizers, post-processors and decoders), growable byte buffers, and the
 * Unicode services (UTF-8, normalization forms, lowercase, character classes) the steps share. */
#ifndef HEED_TOK_H
#define HEED_TOK_H

#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>

/* --- growable byte buffer ---------------------------------------------------------------------- */
typedef struct {
    char *p;
    size_t n, cap;
    int oom; /* set once an allocation failed; later appends are dropped */
    int rx;  /* a PCRE2 error code when a regex match failed (resource limits) while producing it */
} tbuf;

void tb_put(tbuf *b, const void *s, size_t n);
void tb_putc(tbuf *b, uint32_t cp); /* appends cp as UTF-8 */
/* Makes room for `extra` more bytes so that pointers into b stay valid while they are appended;
 * returns 0 when out of memory. */
int tb_reserve(tbuf *b, size_t extra);
void tb_free(tbuf *b);

/* --- Unicode (unicode.c) ----------------------------------------------------------------------- */
/* Decodes one UTF-8 character of s [n > 0] into *cp; returns its length, or 0 if invalid there. */
int utf8_dec(uint32_t *cp, const char *s, size_t n);
/* Length of the valid UTF-8 prefix of s [n] (n when it is all valid). */
size_t utf8_valid(const char *s, size_t n);
/* Appends s [n] with each maximal invalid subsequence replaced by U+FFFD (Rust's from_utf8_lossy). */
void utf8_lossy(tbuf *out, const char *s, size_t n);

/* Classes as tokenizers computes them: White_Space from Rust's std; "other" (Cc, Cf, Co), nonspacing
 * marks and punctuation from the Unicode 9.0 tables of the crate unicode_categories 0.1.1 (see
 * tools/make_unicode_tables.py). */
int uni_is_whitespace(uint32_t c); /* Rust char::is_whitespace (White_Space) */
int uni_is_other(uint32_t c);      /* unicode_categories is_other */
int uni_is_mn(uint32_t c);         /* unicode_categories is_mark_nonspacing */
int uni_is_punct(uint32_t c);      /* ASCII punctuation or unicode_categories is_punctuation */
int uni_is_alnum(uint32_t c);      /* category L* or N* */
int uni_is_numeric(uint32_t c);    /* category Nd, Nl or No (Rust char::is_numeric) */
/* The ByteLevel character that stands for byte b (GPT-2's bytes_to_unicode; encode.c). */
uint32_t byte_char(unsigned b);
/* Appends the full lowercase of c (Rust char::to_lowercase). */
void uni_lower(tbuf *out, uint32_t c);
/* Appends s [n] (valid UTF-8) in normalization form "NFD", "NFKD", "NFC" or "NFKC" (form: 0..3). */
enum { UNI_NFD = 0, UNI_NFKD = 1, UNI_NFC = 2, UNI_NFKC = 3 };
void uni_normalize(tbuf *out, const char *s, size_t n, int form);

/* --- the loaded tokenizer ---------------------------------------------------------------------- */
/* One step of a pipeline: a normalizer, pre-tokenizer, post-processor or decoder. kids: Sequence. */
typedef struct tnode tnode;
struct tnode {
    int type;
    int n_kids;
    tnode *kids;
    char *s1, *s2;      /* strings (pattern/content/prefix...), NUL-terminated, lengths below */
    size_t n1, n2;
    pcre2_code *re;     /* compiled pattern where the step has one */
    int i1, i2, i3, i4; /* flags and counts, meaning per type */
    int32_t *ids;       /* TemplateProcessing: the single template, >= 0 special ids, -1 the sequence */
    int n_ids;
};

typedef struct {
    char *content; /* as written in tokenizer.json */
    char *match;   /* the form matched in text: content, or its normalized form when normalized */
    size_t n_content, n_match;
    int32_t id;
    int special, lstrip, rstrip, single_word, normalized;
} tadded;

/* Open-addressing hash map from a byte string to an id. */
typedef struct {
    int32_t *slot; /* [cap] ids, -1 empty */
    size_t cap;
} tmap;

enum { MODEL_BPE = 1, MODEL_WORDPIECE = 2 };

/* tnode types. Normalizers N_, pre-tokenizers P_, post-processors Q_, decoders D_; SEQ for all four. */
enum {
    SEQ = 1,
    N_PREPEND, N_REPLACE, N_NF, N_LOWER, N_STRIP, N_STRIP_ACCENTS, N_BERT,
    P_BYTELEVEL, P_SPLIT, P_METASPACE, P_DIGITS, P_PUNCT, P_WHITESPACE, P_WSSPLIT, P_BERT, P_CHARDELIM,
    Q_TEMPLATE, Q_BYTELEVEL, Q_BERT,
    D_BYTELEVEL, D_METASPACE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_REPLACE, D_WORDPIECE, D_BPE
};
/* Split behaviours, as tokenizers' SplitDelimiterBehavior. */
enum { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS };
/* Metaspace prepend_scheme. */
enum { PS_ALWAYS, PS_NEVER, PS_FIRST };

struct heed_tokenizer {
    int model;
    int32_t n_ids;        /* max id + 1 over the model vocabulary and added tokens */
    char **tok;           /* [n_ids] token strings (NULL where no token has that id) */
    uint32_t *tok_len;    /* [n_ids] */
    uint8_t *from_model;  /* [n_ids] 1 when the id is in the model vocabulary */
    tmap vocab;           /* model vocabulary: string -> id */
    /* BPE */
    uint64_t *merge_key;  /* [merge_cap] (left id << 32 | right id) + 1, 0 empty */
    uint64_t *merge_val;  /* [merge_cap] rank << 32 | merged id */
    size_t merge_cap;
    int32_t unk_id;       /* -1: no unknown token */
    int byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix ("##" for WordPiece), end_of_word_suffix */
    size_t n_prefix, n_suffix;
    int32_t byte_id[256]; /* <0xNN> ids for byte fallback, -1 absent */
    int64_t max_chars;    /* WordPiece max_input_chars_per_word */
    /* added tokens, the pipeline */
    tadded *added;
    int n_added;
    uint8_t added_first[2][256]; /* [normalized][byte]: some added token's match starts with that byte */
    pcre2_code *word_re;  /* one character of the Rust regex crate's \w, for single_word; NULL if unused */
    int32_t *added_of;    /* [n_ids] index into added, -1 for model-only ids */
    /* tokenizer.json "truncation" and "padding" (single sequence), applied by encode as tokenizers does */
    int truncate, trunc_left, trunc_only_second;
    int64_t trunc_max, trunc_stride;
    int pad, pad_left;
    int64_t pad_len, pad_multiple; /* pad_len 0: BatchLongest (a single sequence is never padded) */
    int32_t pad_id;
    tnode *normalizer, *pre, *post, *decoder; /* NULL: none */
};

/* Appends to out the normalizer node nd applied to s [n] (valid UTF-8). */
void tok_normalize(tbuf *out, const tnode *nd, const char *s, size_t n);
/* Id of s [n] in the model vocabulary, or -1. */
int32_t tok_vocab_get(const heed_tokenizer *tok, const char *s, size_t n);
/* Frees a node tree's contents (not the node itself). */
void tnode_free(tnode *nd);

#endif /* HEED_TOK_H */
