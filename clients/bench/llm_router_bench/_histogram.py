"""HDR histograms of microseconds: create, encode to send between processes, merge, summarise."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["PERCENTILES", "decode", "encode", "merge", "new_histogram", "summarize"]

# one microsecond to one hour, three significant digits (0.1% error)
_LOWEST, _HIGHEST, _DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    """An empty histogram for values in microseconds."""
    return HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)


def encode(hist: HdrHistogram) -> str:
    """The histogram's compressed base64 form (HdrHistogram's standard encoding)."""
    return hist.encode().decode("ascii")  # type: ignore[no-any-return]


def decode(text: str) -> HdrHistogram:
    """Inverse of :func:`encode`."""
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every value of the encoded ones."""
    total = new_histogram()
    for text in encoded:
        if text:
            total.decode_and_add(text.encode("ascii"))
    return total


def summarize(hist: HdrHistogram) -> dict[str, float]:
    """count, mean, min, p50, p90, p99, p99.9 and max, in milliseconds (count as a number)."""
    count = int(hist.get_total_count())
    if count == 0:
        return {"count": 0}
    out: dict[str, float] = {"count": count, "mean_ms": hist.get_mean_value() / 1000.0}
    out["min_ms"] = hist.get_min_value() / 1000.0
    for p in PERCENTILES:
        out[f"p{p:g}_ms"] = hist.get_value_at_percentile(p) / 1000.0
    out["max_ms"] = hist.get_max_value() / 1000.0
    return out
