"""The sparse ONNX classifier: hashed feature indices -> P(acceptable answer) per model.

Graph (built with ``onnx.helper``; the weight matrices are never multiplied by a dense
2**hash_bits-wide input)::

    indices int64 [N], values float32 [N]
    lin = values @ Gather(W_lin, indices) + b_lin                 # [M]
    hid = act(values @ Gather(W_hid, indices [mod K]) + b_hid)   # [H]
    logits = lin + hid @ W_out                                    # [M]
    # optional category experts (e = 0..E-1: a head for model exp_model[e] on category
    # exp_cat[e], gated by that category's posterior):
    ex = values @ Gather(W_exp, indices mod K_exp) + b_exp        # [E]
    post = hid[exp_cat] where hid[exp_cat] > exp_thr, else 0                   # [E]
    logits += (exp_gate * post * (ex - logits[exp_model])) @ Scatter  # [M]
    quality = Sigmoid(logits)

``act`` is Relu (a hidden layer), Softmax (the posteriors of the category classifier, whose
table is indexed by ``indices mod K``) or "ovr" (sigmoids normalised to sum 1). Without a
hidden table it is a linear model. Weight tables may be stored as float16 (then cast to
float32 after the Gather) to keep the model directory small; int8 tables of a model with a
hidden layer are fused into one table and the tail is folded into few nodes
(``router_core._fused_graph``). The graphs are built by ``router_core._graph``. Duplicate indices simply add, which the response scorer
relies on (prompt and response features are concatenated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router_core.errors import ModelError

__all__ = ["LinearHiddenWeights", "OnnxClassifier", "quantize_columns"]


@dataclass
class LinearHiddenWeights:
    """Weights of the linear + one-hidden-layer model.

    Attributes:
        w_lin: [D, M] linear weights per hashed feature; b_lin: [M].
        w_hid: [D, H] hidden-layer weights or None; b_hid: [H]; w_out: [H, M].
    """

    w_lin: np.ndarray
    b_lin: np.ndarray
    w_hid: np.ndarray | None = None
    b_hid: np.ndarray | None = None
    w_out: np.ndarray | None = None
    activation: str = "relu"  # "softmax" (category posteriors) or "ovr" (normalised sigmoids)
    hidden_mod: int = 0  # >0: the hidden table is indexed by ``indices mod hidden_mod``
    w_exp: np.ndarray | None = None  # [K_exp, E] category-expert heads (needs softmax hidden)
    b_exp: np.ndarray | None = None  # [E]
    exp_cat: np.ndarray | None = None  # [E] int: hidden unit (category) gating each head
    exp_model: np.ndarray | None = None  # [E] int: output each head replaces
    exp_gate: np.ndarray | None = None  # [E] float: shrinkage of each head (0..1)
    exp_mod: int = 0  # the expert table is indexed by ``indices mod exp_mod``
    exp_thr: np.ndarray | None = None  # [E] float: a head acts only where its posterior > this

    @property
    def has_experts(self) -> bool:
        return self.w_exp is not None and self.w_hid is not None and self.w_out is not None

    def expert_delta(self, ex: np.ndarray, hid: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Change of the logits [..., M] by the experts given their raw outputs ``ex`` [..., E]."""
        assert self.exp_cat is not None and self.exp_model is not None
        assert self.exp_gate is not None
        post = hid[..., self.exp_cat]
        if self.exp_thr is not None:
            post = np.where(post > self.exp_thr, post, 0.0)
        d = self.exp_gate * post * (ex - logits[..., self.exp_model])
        out = np.zeros(logits.shape, dtype=np.float32)
        for e, m in enumerate(self.exp_model):
            out[..., int(m)] += d[..., e]
        return out

    @property
    def n_outputs(self) -> int:
        return int(self.w_lin.shape[1])

    def predict_logits(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Reference (numpy) forward pass for one example; used by tests."""
        z = (self.w_lin[indices].astype(np.float32) * values[:, None]).sum(0) + self.b_lin
        if self.w_hid is not None and self.w_out is not None and self.b_hid is not None:
            rows = indices % self.hidden_mod if self.hidden_mod else indices
            h = (self.w_hid[rows].astype(np.float32) * values[:, None]).sum(0) + self.b_hid
            if self.activation == "softmax":
                e = np.exp(h.astype(np.float64) - h.max())
                h = (e / e.sum()).astype(np.float32)
            elif self.activation == "ovr":
                h = 1.0 / (1.0 + np.exp(-h.astype(np.float64)))
                h = (h / h.sum()).astype(np.float32)
            else:
                h = np.maximum(h, 0.0)
            z = z + h @ self.w_out
            if self.has_experts:
                assert self.w_exp is not None and self.b_exp is not None
                er = indices % self.exp_mod if self.exp_mod else indices
                ex = (self.w_exp[er].astype(np.float32) * values[:, None]).sum(0) + self.b_exp
                z = z + self.expert_delta(ex, h, z)
        return np.asarray(z, dtype=np.float32)


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation per column: ``w ~= q * scale`` (scale [K] float32)."""
    w = np.asarray(w, dtype=np.float32)
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


class OnnxClassifier:
    """One onnxruntime session (one intra-op and one inter-op thread, sequential execution)."""

    def __init__(self, path: Path, n_outputs: int | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelError(f"{path}: not a loadable ONNX model ({type(exc).__name__})") from exc
        names = [i.name for i in self._session.get_inputs()]
        outs = [o.name for o in self._session.get_outputs()]
        if sorted(names) != ["indices", "values"] or len(outs) != 1:
            raise ModelError(f"{path}: expected inputs 'indices' and 'values' and one output")
        self._output = outs[0]
        self._outputs = [outs[0]]
        # The binding's own run() skips the Python wrapper's per-call input validation (about
        # 10 us of a ~20 us fixed cost); inputs here are always the two validated above.
        sess = getattr(self._session, "_sess", None)
        self._run_options = ort.RunOptions()
        self._fast_run = getattr(sess, "run", None)
        shape = self._session.get_outputs()[0].shape
        self.n_outputs = int(shape[0]) if shape and isinstance(shape[0], int) else n_outputs
        self._buf = np.zeros(4096, dtype=np.int64)

    def run(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        """P(acceptable) per output for one example's sparse features."""
        n = len(indices)
        if n > len(self._buf):
            self._buf = np.zeros(max(n, 2 * len(self._buf)), dtype=np.int64)
        idx = self._buf[:n]
        idx[...] = indices  # reuse the int64 buffer instead of allocating per call
        feed = {"indices": idx, "values": np.asarray(values, dtype=np.float32)}
        if self._fast_run is not None:
            out = self._fast_run(self._outputs, feed, self._run_options)
        else:
            out = self._session.run(self._outputs, feed)
        return np.asarray(out[0], dtype=np.float32)

    def run_many(self, features: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Stack :meth:`run` over many examples -> [n, outputs]."""
        rows = [self.run(i, v) for i, v in features]
        if not rows:
            return np.zeros((0, self.n_outputs or 0), dtype=np.float32)
        return np.stack(rows)
