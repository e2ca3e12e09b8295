"""Router model directories: ``model.onnx`` + optional ``scorer.onnx`` + ``model_card.json``.

:class:`QualityModel` loads one and predicts, per trained model, the probability that its
answer to a prompt is acceptable. Directories are written atomically (a temporary sibling
directory renamed into place), so a failed ``train`` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router_core._classifier import OnnxClassifier
from router_core._feature_spec import FeatureSpec
from router_core.errors import ModelError

__all__ = [
    "CARD_FORMAT",
    "QualityModel",
    "convert_model_dir",
    "default_model_dir",
    "routing_score",
    "write_model_dir",
]

CARD_FORMAT = "llm-router-model/1"
MODEL_FILE = "model.onnx"
SCORER_FILE = "scorer.onnx"
CARD_FILE = "model_card.json"


def default_model_dir() -> Path:
    """The shipped default model (``router_core/data/default_model/``)."""
    return Path(__file__).resolve().parent / "data" / "default_model"


def _read_card(path: Path) -> dict[str, Any]:
    card_path = path / CARD_FILE
    if not path.is_dir():
        raise ModelError(f"{path}: the model directory does not exist")
    if not card_path.is_file():
        raise ModelError(f"{path}: no {CARD_FILE} in the model directory")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: the model card is not valid JSON") from exc
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelError(f"{card_path}: not an llm-router model card (format {CARD_FORMAT})")
    names = card.get("model_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{card_path}: 'model_names' must be a non-empty list of names")
    return card


def _check_spec(path: Path, card: Mapping[str, Any], expected: FeatureSpec | None) -> FeatureSpec:
    raw = card.get("feature_spec")
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: the model card has no 'feature_spec'")
    try:
        spec = FeatureSpec.from_dict(raw)
    except Exception as exc:  # from_dict raises on unknown or missing keys
        raise ModelError(f"{path}: the model card's feature_spec is invalid ({exc})") from exc
    current = FeatureSpec() if expected is None else expected
    if spec.version != current.version:
        raise ModelError(
            f"{path}: the model was trained for feature spec version {spec.version!r} but this "
            f"extractor is version {current.version!r}; retrain it with 'llm-router train'"
        )
    if expected is not None and spec != expected:
        raise ModelError(f"{path}: the model's feature spec does not match the expected one")
    return spec


class QualityModel:
    """A loaded router model: prompt -> P(acceptable answer) for each of ``model_names``."""

    def __init__(self, path: Path, card: dict[str, Any], spec: FeatureSpec) -> None:
        self.path = path
        self.card = card
        self.spec = spec
        self.model_names: tuple[str, ...] = tuple(card["model_names"])
        self._clf = OnnxClassifier(path / MODEL_FILE, len(self.model_names))
        if self._clf.n_outputs != len(self.model_names):
            raise ModelError(
                f"{path}: model.onnx has {self._clf.n_outputs} outputs but the card names "
                f"{len(self.model_names)} models"
            )
        scorer = path / SCORER_FILE
        self._scorer = OnnxClassifier(scorer, 1) if scorer.is_file() else None
        self._index = {m: i for i, m in enumerate(self.model_names)}

    @classmethod
    def load(cls, path: str | Path, spec: FeatureSpec | None = None) -> QualityModel:
        """Load a model directory.

        Raises:
            ModelError: the directory is missing, corrupt, or built for another feature spec.
        """
        p = Path(path)
        card = _read_card(p)
        checked = _check_spec(p, card, spec)
        if not (p / MODEL_FILE).is_file():
            raise ModelError(f"{p}: no {MODEL_FILE} in the model directory")
        return cls(p, card, checked)

    @property
    def has_scorer(self) -> bool:
        return self._scorer is not None

    def features(self, text: str, meta: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
        """The sparse prompt features this model was trained on."""
        from router_core import extract_features

        return extract_features(text, self.spec, meta)

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        """P(acceptable) per ``model_names`` (float32 [M])."""
        idx, val = self.features(text, meta)
        return self._clf.run(idx, val)

    def predict_batch(self, texts: Sequence[str], meta: Sequence[str] = ()) -> np.ndarray:
        """:meth:`predict` for many prompts -> float32 [n, M]."""
        out = np.empty((len(texts), len(self.model_names)), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.predict(text, meta)
        return out

    def response_features(
        self, prompt: str, response: str, model: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scorer features: prompt (namespace 1) + response (namespace 2, model meta token)."""
        from router_core import extract_features

        pi, pv = extract_features(prompt, self.spec, (), 1)
        ri, rv = extract_features(response, self.spec, (f"model={model}",), 2)
        return np.concatenate([pi, ri]), np.concatenate([pv, rv])

    def score_response(self, prompt: str, response: str, model: str) -> float:
        """P(acceptable) of ``response`` by ``model`` to ``prompt`` (cascade confidence).

        Raises:
            ModelError: the model directory has no response scorer.
        """
        if self._scorer is None:
            raise ModelError(f"{self.path}: the model has no response scorer (scorer.onnx)")
        idx, val = self.response_features(prompt, response, model)
        return float(self._scorer.run(idx, val)[0])

    def index_of(self, model: str) -> int:
        """Column of ``model`` in :meth:`predict` output.

        Raises:
            ModelError: the model was not trained on ``model``.
        """
        try:
            return self._index[model]
        except KeyError:
            raise ModelError(
                f"{self.path}: the router model was not trained on {model!r} "
                f"(it knows {', '.join(self.model_names)})"
            ) from None


def routing_score(predicted: np.ndarray, strong: int, weak: int, kind: str = "diff") -> np.ndarray:
    """Two-model routing score in [0, 1] from [..., M] predictions (higher -> strong model).

    ``kind`` "diff" is ``(P(strong ok) - P(weak ok) + 1) / 2`` (the classifier policy's
    threshold score); "weak" is ``1 - P(weak ok)``. The model card's ``routing_score`` names
    the kind the model was tuned for.
    """
    p = np.asarray(predicted, dtype=np.float64)
    if kind == "weak":
        return 1.0 - p[..., weak]
    return (p[..., strong] - p[..., weak] + 1.0) / 2.0


def write_model_dir(
    target: str | Path,
    model_onnx: bytes,
    card: Mapping[str, Any],
    scorer_onnx: bytes | None = None,
) -> Path:
    """Write a model directory atomically: build a temp sibling, then rename it into place."""
    dest = Path(target).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        (tmp / MODEL_FILE).write_bytes(model_onnx)
        if scorer_onnx is not None:
            (tmp / SCORER_FILE).write_bytes(scorer_onnx)
        full = {"format": CARD_FORMAT, **card}
        (tmp / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", "utf-8")
        os.chmod(tmp, 0o755)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def convert_model_dir(source: str | Path, target: str | Path, storage: str) -> dict[str, Any]:
    """Re-export a model directory's classifier with another table storage (no retraining).

    The card is kept, with ``architecture.storage`` updated and ``converted_from`` naming the
    source's storage; the response scorer is copied unchanged. Written atomically.

    Returns:
        The new model card.

    Raises:
        ModelError: the source is not a loadable model directory or its graph cannot be read
            back (fused int8 tables are lossy: convert from the float32 original).
    """
    from router_core._graph import build_classifier_graph, read_weights

    src = Path(source)
    card = _read_card(src)
    try:
        weights = read_weights((src / MODEL_FILE).read_bytes())
        model = build_classifier_graph(weights, storage, doc="llm-router quality model")
    except OSError as exc:
        raise ModelError(f"{src}: cannot read {MODEL_FILE} ({exc.strerror})") from exc
    except ValueError as exc:
        raise ModelError(f"{src}: {exc}") from exc
    arch = dict(card.get("architecture") or {})
    card = {k: v for k, v in card.items() if k != "format"}
    card["converted_from"] = {"storage": arch.get("storage", "float32")}
    arch["storage"] = storage
    card["architecture"] = arch
    scorer = src / SCORER_FILE
    write_model_dir(target, model, card, scorer.read_bytes() if scorer.is_file() else None)
    return card
