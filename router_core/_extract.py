"""The public feature extractor: a thin wrapper over the compiled ``_features`` module."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from router_core._feature_spec import FeatureSpec
from router_core._features import extract as _extract

__all__ = ["extract_features"]


def extract_features(
    text: str, spec: FeatureSpec, meta: Sequence[str] = (), namespace: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a prompt (all message contents) and request metadata into sparse features.

    Args:
        text: the prompt; any ``str`` (NUL bytes, lone surrogates and megabytes are fine).
        spec: extractor parameters; a model only accepts the spec it was trained with.
        meta: tokens such as ``"task_type=code"``, hashed into their own namespace.
        namespace: changes the hash seed (prompt vs response features of the scorer).

    Returns:
        ``(indices, values)``: int32 indices, ascending and unique in ``[0, 2**hash_bits)``,
        and float32 values.  Indices below ``spec.n_dense`` are dense lexical signals.

    Raises:
        InvalidRequest: ``text`` or a meta token is not a ``str``.
    """
    return _extract(text, spec, meta, namespace)
