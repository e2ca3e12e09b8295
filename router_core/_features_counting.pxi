# Sorting and counting of hashed n-gram and word indices. Included by ``_features.pyx``.

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
