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

include "_features_tables.pxi"
include "_features_state.pxi"
include "_features_signals.pxi"
include "_features_words.pxi"
include "_features_counting.pxi"


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
