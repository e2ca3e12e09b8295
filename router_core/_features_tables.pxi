# Constants, lookup tables and hashing helpers of the feature extractor, built once from
# ``_feature_spec``. Included by ``_features.pyx`` (one extension module).

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
