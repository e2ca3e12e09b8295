"""Type stub of the compiled feature extractor (router_core/_features.pyx)."""

from collections.abc import Sequence

import numpy as np

from router_core._feature_spec import FeatureSpec

def extract(
    text: str, spec: FeatureSpec, meta: Sequence[str] = (), namespace: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled ``extract_features``: (int32 sorted unique indices, float32 values)."""
