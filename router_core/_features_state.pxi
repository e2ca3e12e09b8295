# Per-call state of the feature extractor: parameters, scratch buffers kept between calls.
# Included by ``_features.pyx``.

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
