"""llm-router's pure core: features, quality model, routing policies."""

from __future__ import annotations

from router_core._catalog import Catalog
from router_core._config_loader import default_config_path, load_config
from router_core._config_schema import ModelSpec, RouterConfig
from router_core._costs import estimate_cost, estimate_tokens
from router_core._datasets import RoutingDataset, load_dataset
from router_core._decision import CascadeStep, Decision, QualityPredictor, RouteRequest
from router_core._evaluation import evaluate_predictions
from router_core._extract import extract_features
from router_core._feature_spec import FeatureSpec
from router_core._model_dir import QualityModel, default_model_dir, routing_score
from router_core._policies import POLICIES, Policy
from router_core._router import Router, load_router

__all__ = [
    "POLICIES",
    "CascadeStep",
    "Catalog",
    "Decision",
    "FeatureSpec",
    "ModelSpec",
    "Policy",
    "QualityModel",
    "QualityPredictor",
    "RouteRequest",
    "Router",
    "RouterConfig",
    "RoutingDataset",
    "default_config_path",
    "default_model_dir",
    "estimate_cost",
    "estimate_tokens",
    "evaluate_predictions",
    "extract_features",
    "load_config",
    "load_dataset",
    "load_router",
    "routing_score",
]
