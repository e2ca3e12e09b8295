"""llm-router's pure core: features, quality model, routing policies."""

from __future__ import annotations

from router_core._extract import extract_features
from router_core._feature_spec import FeatureSpec
from router_core._catalog import Catalog
from router_core._config import ModelSpec, RouterConfig, default_config_path, load_config
from router_core._costs import estimate_cost, estimate_tokens
from router_core._decision import CascadeStep, Decision, QualityPredictor, RouteRequest
from router_core._policies import POLICIES, Policy
from router_core._router import Router, load_router
from router_core._model_dir import QualityModel, default_model_dir, routing_score
from router_core._datasets import RoutingDataset, load_dataset
from router_core._evaluation import evaluate_predictions

__all__ = [
    "FeatureSpec",
    "extract_features",
    "CascadeStep",
    "Catalog",
    "Decision",
    "ModelSpec",
    "POLICIES",
    "Policy",
    "QualityPredictor",
    "RouteRequest",
    "Router",
    "RouterConfig",
    "default_config_path",
    "estimate_cost",
    "estimate_tokens",
    "load_config",
    "load_router",
    "QualityModel",
    "RoutingDataset",
    "default_model_dir",
    "evaluate_predictions",
    "load_dataset",
    "routing_score",
]
