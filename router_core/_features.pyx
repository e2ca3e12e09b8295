# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled feature extractor; ``_features_ref.py`` defines the output and the tests compare them.

Code points are read straight from the ``str`` buffer (never encoded, so lone surrogates and NUL
bytes are ordinary code points).  Hashed indices are collected in a buffer kept between calls
(the GIL is held throughout and no Python code runs while it is in use), radix-sorted and
run-length counted; all float arithmetic follows the reference in the same order.
"""

from cpython.unicode cimport (
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
    Py_UNICODE_ISALNUM,
    Py_UNICODE_ISSPACE,
)
from libc.math cimport log, log1p, sqrt
from libc.stdint cimport int32_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memmove, memset

cimport numpy as cnp

import math

from router_core import _feature_spec as fs
from router_core.errors import InvalidRequest, ModelError

cnp.import_array()

cdef enum:
    N_SIGNALS = 64
    MAX_KW = 1024          # keyword hash table slots (power of two, > 2 x keywords)
    MAX_KW_LEN = 16
    MAX_PHRASES = 16
    MAX_RANGES = 32
    STACK_CHARS = 4100
    CHUNK = 65536          # hashed indices sorted at a time
    N_LOG = 4096           # 1 + log(c) tabulated for counts below this
    DIRECT_MAX_HASH_BITS = 20  # direct counting up to 2**20 indices (2 MiB of uint16 counts)


cdef uint32_t M_FNV_OFFSET = fs.FNV_OFFSET
cdef uint32_t M_FNV_PRIME = fs.FNV_PRIME
cdef uint32_t M_KIND_MULT = fs.KIND_MULT
cdef uint32_t M_NS_MULT = fs.NAMESPACE_MULT
cdef uint32_t KIND_CHAR = fs.KIND_CHAR
cdef uint32_t KIND_WORD = fs.KIND_WORD
cdef uint32_t KIND_BIGRAM = fs.KIND_BIGRAM
cdef uint32_t KIND_META = fs.KIND_META

# --- dense signal layout (see _feature_spec) ---
cdef int S_BACKSLASH = fs.S_BACKSLASH
cdef int S_BIAS = fs.S_BIAS
cdef int S_BRACES = fs.S_BRACES
cdef int S_BRACKETS = fs.S_BRACKETS
cdef int S_DIGIT = fs.S_DIGIT
cdef int S_DIGIT_OP_DIGIT = fs.S_DIGIT_OP_DIGIT
cdef int S_DOLLAR = fs.S_DOLLAR
cdef int S_ENDS_WITH_QUESTION = fs.S_ENDS_WITH_QUESTION
cdef int S_EQUALS = fs.S_EQUALS
cdef int S_FENCES = fs.S_FENCES
cdef int S_HASHES = fs.S_HASHES
cdef int S_LEN_BUCKET = fs.S_LEN_BUCKET
cdef int S_LIST_ITEMS = fs.S_LIST_ITEMS
cdef int S_LOG_CHARS = fs.S_LOG_CHARS
cdef int S_LOG_NEWLINES = fs.S_LOG_NEWLINES
cdef int S_LOG_TOKENS = fs.S_LOG_TOKENS
cdef int S_LOG_WORDS = fs.S_LOG_WORDS
cdef int S_MATH_OPS = fs.S_MATH_OPS
cdef int S_NON_ASCII = fs.S_NON_ASCII
cdef int S_QUESTION_MARKS = fs.S_QUESTION_MARKS
cdef int S_SCRIPT = fs.S_SCRIPT
cdef int S_SEMICOLONS = fs.S_SEMICOLONS
cdef int S_SPACE = fs.S_SPACE
cdef int S_UNDERSCORES = fs.S_UNDERSCORES
cdef int S_UPPER = fs.S_UPPER
cdef int S_KW_FIRST = fs.S_KW_PROOF
cdef int S_KW_LAST = fs.S_KW_REASONING
cdef int S_FIRST_WORD_QUESTION = fs.S_FIRST_WORD_QUESTION
cdef int S_LOG_TRUNC_WORDS = fs.S_LOG_TRUNC_WORDS
cdef int S_TRUNCATED = fs.S_TRUNCATED
cdef int S_URLS = fs.S_URLS
cdef Py_ssize_t LEN_EDGES[7]
for _k, _edge in enumerate(fs.LEN_BUCKET_EDGES):
    LEN_EDGES[_k] = _edge

# --- tables built once from _feature_spec ---------------------------------------------------
cdef unsigned char ascii_space[128]
cdef unsigned char ascii_alnum[128]
cdef unsigned char ascii_special[128]   # chars the full-text pass looks at more closely
cdef unsigned char ascii_op[128]        # MATH_OPS_ALL
cdef uint32_t ascii_scripts[128]        # bit k: in SCRIPT_RANGES[k]
cdef int n_ranges = 0
cdef uint32_t range_lo[MAX_RANGES]
cdef uint32_t range_hi[MAX_RANGES]
cdef int range_script[MAX_RANGES]
cdef unsigned char bmp_script[0x10000]  # script index + 1 of each BMP code point, 0: none
cdef unsigned char bmp_class[0x10000]   # BMP code point: 1 if Py_UNICODE_ISSPACE, | 2 if ISALNUM
cdef int n_scripts = len(fs.SCRIPT_RANGES)

cdef int n_kw = 0
cdef uint32_t kw_hash[MAX_KW]           # slot -> unseeded FNV of the word (valid if kw_id > 0)
cdef int kw_slot_id[MAX_KW]             # slot -> keyword id (1-based), 0 = empty
cdef Py_UCS4 kw_chars[MAX_KW][MAX_KW_LEN]
cdef int kw_len[MAX_KW]                 # by id
cdef int kw_signal[MAX_KW]              # by id
cdef unsigned char kw_starter[MAX_KW]   # by id
cdef int n_phrases = 0
cdef double one_plus_log[N_LOG]         # 1 + log(c), computed exactly as the reference does
cdef int ph_len[MAX_PHRASES]
cdef int ph_ids[MAX_PHRASES][3]
cdef int ph_signal[MAX_PHRASES]


cdef inline uint32_t fmix32(uint32_t h) noexcept:
    h ^= h >> 16
    h *= 0x85EBCA6BU
    h ^= h >> 13
    h *= 0xC2B2AE35U
    h ^= h >> 16
    return h


cdef inline uint32_t mix32(uint32_t h) noexcept:
    # one xorshift-multiply: the index takes the high bits of h * range, which it mixes well
    return (h ^ (h >> 16)) * 0x7FEB352DU


cdef inline uint32_t kind_seed(uint32_t base, uint32_t kind) noexcept:
    return fmix32(base ^ (kind * M_KIND_MULT)) ^ M_FNV_OFFSET


cdef uint32_t fnv_str(uint32_t h, str s):
    cdef Py_ssize_t i
    for i in range(len(s)):
        h = (h ^ <uint32_t>ord(s[i])) * M_FNV_PRIME
    return h


def _build_tables():
    global n_ranges, n_kw, n_phrases
    cdef int c, k, slot, kid
    cdef Py_UCS4 u
    cdef uint32_t h
    for c in range(128):
        ch = chr(c)
        ascii_space[c] = ch.isspace()
        ascii_alnum[c] = ch.isalnum()
        ascii_op[c] = ch in fs.MATH_OPS_ALL
        ascii_special[c] = ascii_op[c] or ch in "\n`:"
        ascii_scripts[c] = 0
    memset(bmp_script, 0, sizeof(bmp_script))
    for u in range(0x10000):  # the same calls the loops would make, tabulated
        bmp_class[u] = (1 if Py_UNICODE_ISSPACE(u) else 0) | (2 if Py_UNICODE_ISALNUM(u) else 0)
    for k, ranges in enumerate(fs.SCRIPT_RANGES):
        for lo, hi in ranges:
            if n_ranges >= MAX_RANGES:
                raise ModelError("too many script ranges for the compiled extractor.")
            range_lo[n_ranges] = lo
            range_hi[n_ranges] = hi
            range_script[n_ranges] = k
            n_ranges += 1
            for c in range(lo, min(hi, 0xFFFF) + 1):
                if bmp_script[c]:
                    raise ModelError("script ranges overlap; the compiled extractor needs them disjoint.")
                bmp_script[c] = k + 1
            for c in range(128):
                if lo <= c <= hi:
                    ascii_scripts[c] |= 1U << k
    ids = {}
    memset(kw_slot_id, 0, sizeof(kw_slot_id))
    for word, signal in sorted(fs.KEYWORDS.items()):
        if len(word) > MAX_KW_LEN or n_kw + 1 >= MAX_KW // 2:
            raise ModelError("keyword table too large for the compiled extractor.")
        n_kw += 1
        kid = n_kw
        ids[word] = kid
        kw_len[kid] = len(word)
        kw_signal[kid] = signal
        kw_starter[kid] = word in fs.QUESTION_STARTERS
        for k in range(len(word)):
            kw_chars[kid][k] = ord(word[k])
        h = fnv_str(M_FNV_OFFSET, word)
        slot = h & (MAX_KW - 1)
        while kw_slot_id[slot]:
            slot = (slot + 1) & (MAX_KW - 1)
        kw_slot_id[slot] = kid
        kw_hash[slot] = h
    for words, signal in fs.PHRASES:
        if n_phrases >= MAX_PHRASES or not 1 <= len(words) <= 3:
            raise ModelError("phrase table does not fit the compiled extractor.")
        ph_len[n_phrases] = len(words)
        for k in range(len(words)):
            ph_ids[n_phrases][k] = ids[words[k]]
        ph_signal[n_phrases] = signal
        n_phrases += 1
    one_plus_log[0] = 1.0
    one_plus_log[1] = 1.0
    for c in range(2, N_LOG):
        one_plus_log[c] = 1.0 + math.log(c)  # the reference's own formula
    if fs.N_SIGNALS != N_SIGNALS:
        raise ModelError("compiled extractor was built for another number of dense signals.")


_build_tables()


# --- per-call state --------------------------------------------------------------------------
cdef struct Params:
    uint32_t hash_bits
    uint32_t n_dense
    uint32_t range_size
    int ngram_min
    int ngram_max
    Py_ssize_t max_chars
    uint32_t seed


cdef struct Scratch:
    uint32_t *buf      # hashed indices since the last drain (CHUNK slots; small texts touch little)
    uint32_t *buf2     # radix-sort buffer (CHUNK slots)
    uint64_t *pairs    # sorted (index << 32 | count) so far
    uint64_t *pairs2   # pairs of the last drain before merging; later the float64 weights
    Py_ssize_t pairs_cap
    uint16_t *rcount   # per index: its count in this call; all zero between calls
    int rc_bits        # hash_bits rcount has room for (0: none)


cdef Scratch scratch = Scratch(NULL, NULL, NULL, NULL, 0, NULL, 0)
cdef bint scratch_busy = False
cdef object _last_spec = None
cdef Params _last_params


cdef void free_scratch(Scratch *sc) noexcept:
    free(sc.buf); free(sc.buf2); free(sc.pairs); free(sc.pairs2)
    free(sc.rcount)
    sc.buf = sc.buf2 = NULL
    sc.pairs = sc.pairs2 = NULL
    sc.pairs_cap = 0
    sc.rcount = NULL
    sc.rc_bits = 0


cdef int ensure_counts(Scratch *sc, int hash_bits) except -1:
    """A zeroed count array for ``2**hash_bits`` indices."""
    if hash_bits <= sc.rc_bits:
        return 0
    free(sc.rcount)
    sc.rc_bits = 0
    sc.rcount = <uint16_t *>calloc(<Py_ssize_t>1 << hash_bits, sizeof(uint16_t))
    if sc.rcount == NULL:
        raise MemoryError()
    sc.rc_bits = hash_bits
    return 0


cdef inline Py_ssize_t tally(uint16_t *rc, uint32_t *a, Py_ssize_t nu, uint32_t x) noexcept:
    """Count index ``x``, branch-free; a first occurrence joins the list ``a[:nu]``."""
    cdef uint16_t old = rc[x]
    rc[x] = old + 1
    a[nu] = x
    return nu + (old == 0)


cdef Py_ssize_t direct_sorted(Scratch *sc, uint32_t *a, Py_ssize_t nu, int hash_bits) noexcept:
    """Sort the ``nu`` distinct indices ``a`` counted in ``sc.rcount``: write (index << 32 | count)
    to ``sc.pairs`` (room for ``nu``) and leave the counts zeroed again."""
    cdef uint16_t *rc = sc.rcount
    cdef uint64_t *out = sc.pairs
    cdef Py_ssize_t i
    cdef uint32_t x
    radix_sort(a, sc.buf2, nu, hash_bits)
    for i in range(nu):
        x = a[i]
        out[i] = (<uint64_t>x << 32) | rc[x]
        rc[x] = 0
    return nu


cdef int ensure_buffers(Scratch *sc) except -1:
    if sc.buf == NULL:
        sc.buf = <uint32_t *>malloc(CHUNK * sizeof(uint32_t))
        sc.buf2 = <uint32_t *>malloc(CHUNK * sizeof(uint32_t))
        if sc.buf == NULL or sc.buf2 == NULL:
            free(sc.buf); free(sc.buf2)
            sc.buf = sc.buf2 = NULL
            raise MemoryError()
    return 0


cdef int ensure_pairs(Scratch *sc, Py_ssize_t need) except -1:
    """Make room for ``need`` pairs, keeping the ones in ``sc.pairs``."""
    cdef Py_ssize_t cap = sc.pairs_cap
    cdef uint64_t *grown
    if need <= cap:
        return 0
    cap = max(need, 2 * cap, 1024)
    grown = <uint64_t *>realloc(sc.pairs, cap * sizeof(uint64_t))
    if grown == NULL:
        raise MemoryError()
    sc.pairs = grown
    free(sc.pairs2)
    sc.pairs2 = <uint64_t *>malloc(cap * sizeof(uint64_t))
    if sc.pairs2 == NULL:
        sc.pairs_cap = 0
        raise MemoryError()
    sc.pairs_cap = cap
    return 0


cdef Params read_params(object spec) except *:
    global _last_spec, _last_params
    if spec is _last_spec:
        return _last_params
    cdef Params p
    if spec.version != fs.FEATURE_VERSION:
        raise ModelError(f"feature spec version {spec.version} is not supported.")
    if not (10 <= spec.hash_bits <= 24 and 1 <= spec.char_ngram_min <= spec.char_ngram_max <= 8
            and 1 <= spec.max_chars <= (1 << 26) and 0 <= spec.seed <= 0xFFFFFFFF
            and N_SIGNALS <= spec.n_dense <= (1 << spec.hash_bits) // 2):
        raise ModelError("feature spec parameters are out of range.")
    p.hash_bits = spec.hash_bits
    p.n_dense = spec.n_dense
    p.range_size = (1U << p.hash_bits) - p.n_dense
    p.ngram_min = spec.char_ngram_min
    p.ngram_max = spec.char_ngram_max
    p.max_chars = spec.max_chars
    p.seed = spec.seed
    _last_spec = spec
    _last_params = p
    return p


cdef inline uint32_t to_index(uint32_t h, const Params *p) noexcept:
    return p.n_dense + <uint32_t>((<uint64_t>h * p.range_size) >> 32)


cdef inline double lg(double count, double scale) noexcept:
    if count == 0.0:  # log1p(0) / scale == 0.0 exactly; skip the libm call
        return 0.0
    return log1p(count) / scale


# --- full-text signals -----------------------------------------------------------------------
cdef inline bint is_list_item(int kind, const void *d, Py_ssize_t j, Py_ssize_t n) noexcept:
    cdef uint32_t c
    cdef int digits = 0
    while j < n:
        c = PyUnicode_READ(kind, d, j)
        if c != 32 and c != 9:
            break
        j += 1
    if j >= n:
        return False
    c = PyUnicode_READ(kind, d, j)
    if c == 45 or c == 42 or c == 43 or c == 0x2022:  # - * + •
        j += 1
    elif 48 <= c <= 57:
        while j < n and digits < 4:
            c = PyUnicode_READ(kind, d, j)
            if not 48 <= c <= 57:
                break
            digits += 1
            j += 1
        if digits > 3 or j >= n:
            return False
        c = PyUnicode_READ(kind, d, j)
        if c != 46 and c != 41:
            return False
        j += 1
    elif 65 <= c <= 90 or 97 <= c <= 122:
        j += 1
        if j >= n:
            return False
        c = PyUnicode_READ(kind, d, j)
        if c != 46 and c != 41:
            return False
        j += 1
    else:
        return False
    if j >= n:
        return False
    c = PyUnicode_READ(kind, d, j)
    return c == 32 or c == 9


cdef inline bint matches_ascii(int kind, const void *d, Py_ssize_t i, Py_ssize_t n,
                               const char *s, int m) noexcept:
    cdef int k
    if i + m > n:
        return False
    for k in range(m):
        if PyUnicode_READ(kind, d, i + k) != <Py_UCS4>s[k]:
            return False
    return True


cdef inline bint is_digit_at(int kind, const void *d, Py_ssize_t i) noexcept:
    cdef uint32_t c = PyUnicode_READ(kind, d, i)
    return 48 <= c <= 57


cdef void full_text_signals(str text, double *dense) noexcept:
    cdef int kind = PyUnicode_KIND(text)
    cdef const void *d = PyUnicode_DATA(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t i, fence_skip = 0
    cdef uint64_t hist[128]
    cdef uint64_t scripts[32]
    cdef uint64_t n_space = 0, n_words = 0, n_nonascii = 0, n_fences = 0, n_dod = 0
    cdef uint64_t n_list = 0, n_urls = 0
    cdef uint32_t c, last_nonspace = 0
    cdef uint64_t sp, prev_space = 1
    cdef int k, bucket
    memset(hist, 0, sizeof(hist))
    memset(scripts, 0, sizeof(scripts))
    if n > 0 and is_list_item(kind, d, 0, n):
        n_list += 1
    for i in range(n):
        c = PyUnicode_READ(kind, d, i)
        if c < 128:
            hist[c] += 1
            sp = ascii_space[c]
            if ascii_special[c]:
                if c == 10:
                    if i + 1 < n and is_list_item(kind, d, i + 1, n):
                        n_list += 1
                elif c == 96:
                    if i >= fence_skip and matches_ascii(kind, d, i, n, b"```", 3):
                        n_fences += 1
                        fence_skip = i + 3
                elif c == 58:  # "http://" and "https://" found at their ':'
                    if matches_ascii(kind, d, i, n, b"://", 3) and (
                        (i >= 4 and matches_ascii(kind, d, i - 4, n, b"http", 4))
                        or (i >= 5 and matches_ascii(kind, d, i - 5, n, b"https", 5))
                    ):
                        n_urls += 1
                elif i > 0 and i + 1 < n and is_digit_at(kind, d, i - 1) and is_digit_at(kind, d, i + 1):
                    n_dod += 1
        else:
            n_nonascii += 1
            sp = (bmp_class[c] & 1) if c <= 0xFFFF else Py_UNICODE_ISSPACE(c)
            n_space += sp
            if c <= 0xFFFF:
                if bmp_script[c]:
                    scripts[bmp_script[c] - 1] += 1
            else:
                for k in range(n_ranges):
                    if range_lo[k] <= c <= range_hi[k]:
                        scripts[range_script[k]] += 1
        # branch-free: word boundaries are unpredictable
        n_words += prev_space & (sp ^ 1)
        prev_space = sp
        last_nonspace = last_nonspace if sp else c
    for c in range(128):
        if hist[c] and ascii_scripts[c]:
            for k in range(n_scripts):
                if ascii_scripts[c] & (1U << k):
                    scripts[k] += hist[c]

    dense[S_BIAS] = 1.0
    dense[S_LOG_CHARS] = lg(<double>n, 16.0)
    bucket = 0
    for k in range(7):
        if n >= LEN_EDGES[k]:
            bucket += 1
    dense[S_LEN_BUCKET + bucket] = 1.0
    dense[S_LOG_TOKENS] = lg(<double>n / 4.0, 14.0)
    dense[S_LOG_WORDS] = lg(<double>n_words, 14.0)
    dense[S_LOG_NEWLINES] = lg(<double>hist[10], 10.0)
    if n:
        dense[S_DIGIT] = <double>sum_hist(hist, 48, 57) / <double>n
        dense[S_UPPER] = <double>sum_hist(hist, 65, 90) / <double>n
        for c in range(128):
            if ascii_space[c]:
                n_space += hist[c]
        dense[S_SPACE] = <double>n_space / <double>n
        dense[S_NON_ASCII] = <double>n_nonascii / <double>n
        for k in range(n_scripts):
            dense[S_SCRIPT + k] = <double>scripts[k] / <double>n
    dense[S_FENCES] = lg(<double>n_fences, 3.0)
    dense[S_BRACES] = lg(<double>(hist[123] + hist[125]), 6.0)
    dense[S_SEMICOLONS] = lg(<double>hist[59], 6.0)
    dense[S_BRACKETS] = lg(<double>(hist[40] + hist[41] + hist[91] + hist[93]), 6.0)
    dense[S_EQUALS] = lg(<double>hist[61], 6.0)
    dense[S_MATH_OPS] = lg(<double>(hist[43] + hist[42] + hist[47] + hist[94]), 6.0)
    dense[S_BACKSLASH] = lg(<double>hist[92], 6.0)
    dense[S_DOLLAR] = lg(<double>hist[36], 6.0)
    dense[S_DIGIT_OP_DIGIT] = lg(<double>n_dod, 6.0)
    dense[S_QUESTION_MARKS] = lg(<double>hist[63], 4.0)
    dense[S_ENDS_WITH_QUESTION] = 1.0 if last_nonspace == 63 else 0.0
    dense[S_LIST_ITEMS] = lg(<double>n_list, 4.0)
    dense[S_URLS] = lg(<double>n_urls, 4.0)
    dense[S_HASHES] = lg(<double>hist[35], 6.0)
    dense[S_UNDERSCORES] = lg(<double>hist[95], 6.0)


cdef inline uint64_t sum_hist(const uint64_t *hist, int lo, int hi) noexcept:
    cdef uint64_t s = 0
    cdef int c
    for c in range(lo, hi + 1):
        s += hist[c]
    return s


# --- words, keywords and n-grams of the truncated, lowercased text -----------------------------
cdef struct WordAcc:
    uint32_t *wf          # hashed word features (unigrams, bigrams), not yet reduced to indices
    Py_ssize_t nwf
    Py_ssize_t nw
    uint32_t prev_hw
    uint32_t bigram_seed
    int id1               # keyword id of the previous word (0: not a keyword)
    int id2               # ... and of the word before it
    bint first_question
    uint64_t counts[N_SIGNALS]


cdef inline int keyword_id(uint32_t hu, Py_ssize_t wlen, int kind, const void *d,
                           Py_ssize_t start) noexcept:
    cdef int slot, kid, k
    if wlen > MAX_KW_LEN:
        return 0
    slot = hu & (MAX_KW - 1)
    while kw_slot_id[slot]:
        kid = kw_slot_id[slot]
        if kw_hash[slot] == hu and kw_len[kid] == wlen:
            for k in range(wlen):
                if PyUnicode_READ(kind, d, start + k) != kw_chars[kid][k]:
                    break
            else:
                return kid
        slot = (slot + 1) & (MAX_KW - 1)
    return 0


cdef inline void finish_word(WordAcc *a, uint32_t hw, uint32_t hu, Py_ssize_t wlen, int kind,
                             const void *d, Py_ssize_t start) noexcept:
    cdef int kid, sig, ph, m
    a.wf[a.nwf] = mix32(hw)
    a.nwf += 1
    if a.nw > 0:
        a.wf[a.nwf] = mix32((a.prev_hw * M_FNV_PRIME) ^ hw ^ a.bigram_seed)
        a.nwf += 1
    a.prev_hw = hw
    kid = keyword_id(hu, wlen, kind, d, start)
    if kid:
        sig = kw_signal[kid]
        if sig >= 0:
            a.counts[sig] += 1
        if a.nw == 0 and kw_starter[kid]:
            a.first_question = True
        for ph in range(n_phrases):
            m = ph_len[ph]
            if ph_ids[ph][m - 1] == kid and (
                m == 1 or (ph_ids[ph][m - 2] == a.id1 and (m == 2 or ph_ids[ph][0] == a.id2))
            ):
                a.counts[ph_signal[ph]] += 1
    a.id2 = a.id1
    a.id1 = kid
    a.nw += 1


cdef Py_ssize_t scan_truncated(str low, uint32_t base, uint32_t *P, WordAcc *a) noexcept:
    """Fill P with the padded, whitespace-collapsed text and ``a`` with word features; return len(P)."""
    cdef int kind = PyUnicode_KIND(low)
    cdef const void *d = PyUnicode_DATA(low)
    cdef Py_ssize_t L = PyUnicode_GET_LENGTH(low)
    cdef Py_ssize_t j, pn = 0, wstart = 0
    cdef uint32_t c
    cdef bint sp, an, pending = False, in_word = False
    cdef uint32_t hw = 0, hu = 0
    cdef uint32_t word_seed = kind_seed(base, KIND_WORD)
    P[pn] = 32
    pn += 1
    for j in range(L):
        c = PyUnicode_READ(kind, d, j)
        if c < 128:
            sp = ascii_space[c]
            an = ascii_alnum[c]
        elif c <= 0xFFFF:
            sp = bmp_class[c] & 1
            an = bmp_class[c] >> 1
        else:
            sp = Py_UNICODE_ISSPACE(c)
            an = Py_UNICODE_ISALNUM(c)
        if sp:
            if pn > 1:
                pending = True
        else:
            if pending:
                P[pn] = 32
                pn += 1
                pending = False
            P[pn] = c
            pn += 1
        if an:
            if not in_word:
                in_word = True
                wstart = j
                hw = word_seed
                hu = M_FNV_OFFSET
            hw = (hw ^ c) * M_FNV_PRIME
            hu = (hu ^ c) * M_FNV_PRIME
        elif in_word:
            finish_word(a, hw, hu, j - wstart, kind, d, wstart)
            in_word = False
    if in_word:
        finish_word(a, hw, hu, L - wstart, kind, d, wstart)
    P[pn] = 32
    pn += 1
    return pn


cdef void insertion_sort(uint32_t *a, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i, j
    cdef uint32_t x
    for i in range(1, n):
        x = a[i]
        j = i - 1
        while j >= 0 and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


cdef void radix_sort(uint32_t *a, uint32_t *tmp, Py_ssize_t n, int hash_bits) noexcept:
    """Sort ``n`` indices (< 2**hash_bits; two LSD radix passes)."""
    cdef Py_ssize_t i
    cdef int bits = (hash_bits + 1) // 2
    cdef uint32_t m = (1U << bits) - 1, b, t, t0 = 0, t1 = 0, x
    cdef uint32_t h0[4096]
    cdef uint32_t h1[4096]
    if n < 64:
        insertion_sort(a, n)
    else:
        memset(h0, 0, (m + 1) * sizeof(uint32_t))
        memset(h1, 0, (m + 1) * sizeof(uint32_t))
        for i in range(n):
            h0[a[i] & m] += 1
            h1[a[i] >> bits] += 1
        for b in range(m + 1):
            t = h0[b]
            h0[b] = t0
            t0 += t
            t = h1[b]
            h1[b] = t1
            t1 += t
        for i in range(n):
            x = a[i]
            tmp[h0[x & m]] = x
            h0[x & m] += 1
        for i in range(n):
            x = tmp[i]
            a[h1[x >> bits]] = x
            h1[x >> bits] += 1


cdef Py_ssize_t sort_count(uint32_t *a, uint32_t *tmp, Py_ssize_t n, int hash_bits,
                           uint64_t *out) noexcept:
    """Sort ``n`` indices (< 2**hash_bits) and write (index << 32 | count)."""
    cdef Py_ssize_t i, nu = 0
    cdef uint32_t x, prev = 0xFFFFFFFFU, fresh
    cdef uint64_t run = 0
    radix_sort(a, tmp, n, hash_bits)
    # run-length count, branch-free (equal neighbours are unpredictable)
    for i in range(n):
        x = a[i]
        fresh = x != prev
        nu += fresh
        run = run * (1 - fresh) + 1
        out[nu - 1] = (<uint64_t>x << 32) | run
        prev = x
    return nu


cdef inline uint32_t ngram_index(uint32_t h, uint32_t n_dense, uint32_t range_size) noexcept:
    return n_dense + <uint32_t>((<uint64_t>((h ^ (h >> 16)) * 0x7FEB352DU) * range_size) >> 32)


cdef Py_ssize_t count_ngrams(Scratch *sc, const uint32_t *P, Py_ssize_t start, Py_ssize_t stop,
                             Py_ssize_t pn, const Params *p, uint32_t seed) noexcept:
    """Buffer the indices of the character n-grams starting at ``P[start:stop]``."""
    cdef uint32_t *buf = sc.buf
    cdef Py_ssize_t nb = 0, i = start, full
    cdef uint32_t n_dense = p.n_dense, range_size = p.range_size, h, prime = M_FNV_PRIME
    cdef int nmin = p.ngram_min, nmax = p.ngram_max, k, end
    cdef const uint32_t *q
    if nmin == 3 and nmax == 5:  # the default spec until 2026-11-28, unrolled
        full = min(stop, pn - 4)
        while i < full:
            q = P + i
            h = (seed ^ q[0]) * prime
            h = (h ^ q[1]) * prime
            h = (h ^ q[2]) * prime
            buf[nb] = ngram_index(h, n_dense, range_size)
            h = (h ^ q[3]) * prime
            buf[nb + 1] = ngram_index(h, n_dense, range_size)
            h = (h ^ q[4]) * prime
            buf[nb + 2] = ngram_index(h, n_dense, range_size)
            nb += 3
            i += 1
    elif nmin == 4 and nmax == 4:  # 4-grams only (the default spec since 2026-11-28), unrolled
        while i < stop:  # callers stop where the last full 4-gram starts
            q = P + i
            h = (seed ^ q[0]) * prime
            h = (h ^ q[1]) * prime
            h = (h ^ q[2]) * prime
            h = (h ^ q[3]) * prime
            buf[nb] = ngram_index(h, n_dense, range_size)
            nb += 1
            i += 1
    while i < stop:
        q = P + i
        # every n-gram length fits, except near the end of the text
        end = nmax if pn - i >= nmax else <int>(pn - i)
        h = seed
        for k in range(nmin - 1):
            h = (h ^ q[k]) * prime
        for k in range(nmin - 1, end):
            h = (h ^ q[k]) * prime
            buf[nb] = ngram_index(h, n_dense, range_size)
            nb += 1
        i += 1
    return nb


cdef Py_ssize_t tally_ngrams(Scratch *sc, const uint32_t *P, Py_ssize_t pn, const Params *p,
                             uint32_t seed) noexcept:
    """Count the character n-grams of ``P[:pn]`` in ``sc.rcount``; list the distinct indices in
    ``sc.buf`` and return how many (as ``count_ngrams``, counting instead of buffering)."""
    cdef uint32_t *u = sc.buf
    cdef uint16_t *rc = sc.rcount
    cdef Py_ssize_t nu = 0, i = 0, full, stop = pn - p.ngram_min + 1
    cdef uint32_t n_dense = p.n_dense, range_size = p.range_size, h, prime = M_FNV_PRIME
    cdef int nmin = p.ngram_min, nmax = p.ngram_max, k, end
    cdef const uint32_t *q
    if nmin == 3 and nmax == 5:  # the default spec until 2026-11-28, unrolled
        full = min(stop, pn - 4)
        while i < full:
            q = P + i
            h = (seed ^ q[0]) * prime
            h = (h ^ q[1]) * prime
            h = (h ^ q[2]) * prime
            nu = tally(rc, u, nu, ngram_index(h, n_dense, range_size))
            h = (h ^ q[3]) * prime
            nu = tally(rc, u, nu, ngram_index(h, n_dense, range_size))
            h = (h ^ q[4]) * prime
            nu = tally(rc, u, nu, ngram_index(h, n_dense, range_size))
            i += 1
    elif nmin == 4 and nmax == 4:  # 4-grams only, unrolled
        while i < stop:
            q = P + i
            h = (seed ^ q[0]) * prime
            h = (h ^ q[1]) * prime
            h = (h ^ q[2]) * prime
            h = (h ^ q[3]) * prime
            nu = tally(rc, u, nu, ngram_index(h, n_dense, range_size))
            i += 1
    while i < stop:
        q = P + i
        end = nmax if pn - i >= nmax else <int>(pn - i)
        h = seed
        for k in range(nmin - 1):
            h = (h ^ q[k]) * prime
        for k in range(nmin - 1, end):
            h = (h ^ q[k]) * prime
            nu = tally(rc, u, nu, ngram_index(h, n_dense, range_size))
        i += 1
    return nu


cdef struct Counter:
    Scratch *sc
    Py_ssize_t pending  # indices waiting in sc.buf
    Py_ssize_t nu       # sorted pairs in sc.pairs
    int hash_bits


cdef int drain(Counter *c) except -1:
    """Sort the buffered indices into the sorted pairs, summing counts of equal indices."""
    cdef Scratch *sc = c.sc
    cdef Py_ssize_t k, i, j, w
    cdef uint64_t x, y
    if c.pending == 0:
        return 0
    ensure_pairs(sc, c.nu + c.pending)
    if c.nu == 0:
        c.nu = sort_count(sc.buf, sc.buf2, c.pending, c.hash_bits, sc.pairs)
        c.pending = 0
        return 0
    k = sort_count(sc.buf, sc.buf2, c.pending, c.hash_bits, sc.pairs2)
    c.pending = 0
    # merge from the back into sc.pairs, then close the gap left by equal indices
    i = c.nu - 1
    j = k - 1
    w = c.nu + k - 1
    while j >= 0:
        x = sc.pairs[i] >> 32 if i >= 0 else 0
        y = sc.pairs2[j] >> 32
        if i >= 0 and x > y:
            sc.pairs[w] = sc.pairs[i]
            i -= 1
        elif i >= 0 and x == y:
            sc.pairs[w] = sc.pairs[i] + (sc.pairs2[j] & 0xFFFFFFFFU)
            i -= 1
            j -= 1
        else:
            sc.pairs[w] = sc.pairs2[j]
            j -= 1
        w -= 1
    if w > i:  # the old pairs left of the merge are in place at [0, i]
        memmove(&sc.pairs[i + 1], &sc.pairs[w + 1], (c.nu + k - 1 - w) * sizeof(uint64_t))
    c.nu = i + 1 + (c.nu + k - 1 - w)
    return 0


cdef Py_ssize_t hashed_text(str low, const Params *p, uint32_t base, WordAcc *a,
                            Scratch *sc) except -1:
    """Count hashed n-grams and words of ``low``; leave sorted pairs in ``sc.pairs``."""
    cdef Py_ssize_t L = PyUnicode_GET_LENGTH(low)
    cdef uint32_t stack_p[STACK_CHARS]
    cdef uint32_t stack_wf[STACK_CHARS]
    cdef uint32_t *P = stack_p
    cdef uint32_t *wf = stack_wf
    cdef Py_ssize_t pn, i, k, end, step, words_done = 0, bound, nb
    cdef uint32_t char_seed = kind_seed(base, KIND_CHAR)
    cdef Counter c = Counter(sc, 0, 0, p.hash_bits)
    if L + 2 > STACK_CHARS:
        P = <uint32_t *>malloc((L + 2) * sizeof(uint32_t))
        wf = <uint32_t *>malloc((L + 2) * sizeof(uint32_t))
        if P == NULL or wf == NULL:
            free(P); free(wf)
            raise MemoryError()
    try:
        ensure_buffers(sc)
        a.wf = wf
        bound = (L + 2) * (p.ngram_max - p.ngram_min + 1) + L + 1
        if p.hash_bits <= DIRECT_MAX_HASH_BITS and bound < CHUNK:  # counts fit uint16
            ensure_counts(sc, p.hash_bits)
            ensure_pairs(sc, bound)
            pn = scan_truncated(low, base, P, a)
            nb = tally_ngrams(sc, P, pn, p, char_seed)
            for k in range(a.nwf):
                nb = tally(sc.rcount, sc.buf, nb, to_index(wf[k], p))
            return direct_sorted(sc, sc.buf, nb, p.hash_bits)
        pn = scan_truncated(low, base, P, a)
        # the buffer holds CHUNK indices: at most 8 per position, 1 per word feature
        step = CHUNK // 8 - 1
        for i in range(0, pn - p.ngram_min + 1, step):
            end = min(i + step, pn - p.ngram_min + 1)
            c.pending = count_ngrams(sc, P, i, end, pn, p, char_seed)
            for k in range(min(a.nwf - words_done, CHUNK - c.pending)):
                sc.buf[c.pending] = to_index(wf[words_done], p)
                c.pending += 1
                words_done += 1
            drain(&c)
        while words_done < a.nwf:
            for k in range(min(a.nwf - words_done, CHUNK)):
                sc.buf[c.pending] = to_index(wf[words_done], p)
                c.pending += 1
                words_done += 1
            drain(&c)
    finally:
        if P != stack_p:
            free(P)
            free(wf)
        a.wf = NULL
    return c.nu


# --- meta tokens and output ------------------------------------------------------------------
cdef uint32_t hash_str(str s, uint32_t h) noexcept:
    cdef int kind = PyUnicode_KIND(s)
    cdef const void *d = PyUnicode_DATA(s)
    cdef Py_ssize_t i
    for i in range(PyUnicode_GET_LENGTH(s)):
        h = (h ^ <uint32_t>PyUnicode_READ(kind, d, i)) * M_FNV_PRIME
    return h


cdef inline str exact_str(object s):
    if type(s) is str:
        return <str>s
    return str.__getitem__(s, slice(None))


cdef uint32_t mix_namespace(const Params *p, object spec, object namespace) except? 0xFFFFFFFF:
    cdef long long ns
    try:
        ns = namespace
    except OverflowError:
        return fs.base_seed(spec, namespace)
    return p.seed ^ <uint32_t>(<uint64_t>ns * M_NS_MULT)


def extract(text, spec, meta=(), namespace=0):
    """Compiled ``extract_features``; see ``router_core._extract`` for the contract."""
    global scratch_busy
    cdef Params p
    cdef uint32_t base, meta_seed, x
    cdef double dense[N_SIGNALS]
    cdef WordAcc acc
    cdef Scratch local
    cdef Scratch *sc
    cdef uint64_t *mpairs = NULL
    cdef uint32_t *midx
    cdef Py_ssize_t n_text, nm, nu, i, j, k, n_out, nd
    cdef bint truncated
    cdef double sq, norm, w
    cdef uint64_t c
    cdef uint32_t ti, mi
    cdef cnp.npy_intp dims[1]
    cdef cnp.ndarray out_i, out_v
    cdef int32_t *oi
    cdef float *ov

    if not isinstance(text, str):
        raise InvalidRequest("prompt text must be a string.")
    text = exact_str(text)
    p = read_params(spec)
    base = mix_namespace(&p, spec, namespace)
    meta_t = tuple(meta)
    for m in meta_t:
        if not isinstance(m, str):
            raise InvalidRequest("meta tokens must be strings.")
    n_text = PyUnicode_GET_LENGTH(text)
    truncated = n_text > p.max_chars
    low = (text[:p.max_chars] if truncated else text).lower()

    memset(dense, 0, sizeof(dense))
    full_text_signals(text, dense)
    memset(&acc, 0, sizeof(acc))
    acc.bigram_seed = kind_seed(base, KIND_BIGRAM)

    nm = len(meta_t)
    if nm:
        mpairs = <uint64_t *>malloc(2 * nm * sizeof(uint64_t))  # pairs, then 2 x nm uint32
        if mpairs == NULL:
            raise MemoryError()
    try:
        meta_seed = kind_seed(base, KIND_META)
        midx = <uint32_t *>(mpairs + nm)
        for i in range(nm):
            midx[i] = to_index(mix32(hash_str(exact_str(meta_t[i]), meta_seed)), &p)
        nm = sort_count(midx, midx + nm, nm, p.hash_bits, mpairs)

        if scratch_busy:
            local = Scratch(NULL, NULL, NULL, NULL, 0, NULL, 0)
            sc = &local
        else:
            sc = &scratch
        scratch_busy = True
        try:
            nu = hashed_text(low, &p, base, &acc, sc)
            keyword_signals(&acc, truncated, dense)
            # weights 1 + log(count), L2 norm summed in ascending index order
            sq = 0.0
            for i in range(nu):
                c = sc.pairs[i] & 0xFFFFFFFFU
                w = one_plus_log[c] if c < N_LOG else 1.0 + log(<double>c)
                (<double *>sc.pairs2)[i] = w
                sq += w * w
            norm = sqrt(sq)
            nd = 0
            for i in range(N_SIGNALS):
                if dense[i] != 0.0:
                    nd += 1
            n_out = nd + union_size(sc.pairs, nu, mpairs, nm)
            dims[0] = n_out
            out_i = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INT32, 0)
            out_v = cnp.PyArray_EMPTY(1, dims, cnp.NPY_FLOAT32, 0)
            oi = <int32_t *>cnp.PyArray_DATA(out_i)
            ov = <float *>cnp.PyArray_DATA(out_v)
            k = 0
            for i in range(N_SIGNALS):
                if dense[i] != 0.0:
                    oi[k] = <int32_t>i
                    ov[k] = <float>dense[i]
                    k += 1
            i = 0
            j = 0
            if nm == 0:  # no meta tokens: the text features as they are
                for i in range(nu):
                    oi[k + i] = <int32_t>(sc.pairs[i] >> 32)
                    ov[k + i] = <float>((<double *>sc.pairs2)[i] / norm + 0.0)
                i = nu
            while i < nu or j < nm:
                ti = <uint32_t>(sc.pairs[i] >> 32) if i < nu else 0xFFFFFFFFU
                mi = <uint32_t>(mpairs[j] >> 32) if j < nm else 0xFFFFFFFFU
                if ti < mi:
                    oi[k] = <int32_t>ti
                    ov[k] = <float>((<double *>sc.pairs2)[i] / norm + 0.0)
                    i += 1
                elif mi < ti:
                    oi[k] = <int32_t>mi
                    ov[k] = <float>(0.0 + <double>(mpairs[j] & 0xFFFFFFFFU))
                    j += 1
                else:
                    oi[k] = <int32_t>ti
                    ov[k] = <float>((<double *>sc.pairs2)[i] / norm + <double>(mpairs[j] & 0xFFFFFFFFU))
                    i += 1
                    j += 1
                k += 1
        finally:
            if sc == &scratch:
                scratch_busy = False
            else:
                free_scratch(sc)
    finally:
        free(mpairs)
    return out_i, out_v


cdef void keyword_signals(WordAcc *a, bint truncated, double *dense) noexcept:
    cdef int i
    for i in range(S_KW_FIRST, S_KW_LAST + 1):
        if i != S_FIRST_WORD_QUESTION:
            dense[i] = lg(<double>a.counts[i], 3.0)
    dense[S_FIRST_WORD_QUESTION] = 1.0 if a.first_question else 0.0
    dense[S_LOG_TRUNC_WORDS] = lg(<double>a.nw, 10.0)
    dense[S_TRUNCATED] = 1.0 if truncated else 0.0


cdef Py_ssize_t union_size(const uint64_t *a, Py_ssize_t na, const uint64_t *b,
                           Py_ssize_t nb) noexcept:
    cdef Py_ssize_t i = 0, j = 0, n = 0
    cdef uint64_t x, y
    while i < na and j < nb:
        x = a[i] >> 32
        y = b[j] >> 32
        if x <= y:
            i += 1
        if y <= x:
            j += 1
        n += 1
    return n + (na - i) + (nb - j)
