"""llm-router's pure core: features, quality model, routing policies."""

from __future__ import annotations

from router_core._extract import extract_features
from router_core._feature_spec import FeatureSpec

__all__ = [
    "FeatureSpec",
    "extract_features",
]
