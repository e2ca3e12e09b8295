# Dense signals computed over the full text (before truncation). Included by ``_features.pyx``.

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
