# Words, keywords and the character stream of the truncated, lowercased text.
# Included by ``_features.pyx``.

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
