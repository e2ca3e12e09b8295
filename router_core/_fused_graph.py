"""The int8 graph of a quality model with a hidden layer: one fused table, a short tail.

onnxruntime spends about a microsecond per node whatever its size, and the tail of the graph
(everything after the sparse bag) works on vectors of a few dozen floats, so its cost is its
node count. Every linear step of the tail is folded into one matrix ``W_tail``::

    z      = (values @ Cast(Gather(W_fused, indices))) * scale + bias     # [M + H (+ E)]
    hid    = act(z[M : M + H])                                           # [H]
    tail   = Concat(z, hid) @ W_tail             # [M] logits (+ [E] gated diffs, [E] posteriors)
    # with category experts (head e replaces output exp_model[e] on category exp_cat[e]):
    logits = tail[:M] + (post_on * tail[M : M + E]) @ Scatter     # post_on: posterior, 0 under
                                                                  # the head's threshold
    quality = Sigmoid(logits)

``W_tail`` maps ``z``'s linear part and ``hid`` to the logits (identity and ``W_out``), each
head's ``gate * (ex - logits[exp_model])`` and its posterior ``hid[exp_cat]``: 12-16 nodes in
all instead of 21 plus the reshapes onnxruntime adds around a fused MatMul + Add. Measured side
by side on the shipped weights: onnxruntime's run at 100-character prompts ~43 -> ~28 us; the
whole ``predict`` 4-12 us faster at 1,000 characters (noisy machine).
``LinearHiddenWeights.predict_logits`` is the reference it is tested against.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router_core._classifier import LinearHiddenWeights, quantize_columns
from router_core._graph import append_activation, append_posterior_gate

__all__ = ["append_fused_graph", "fused_tail_matrix"]


def fused_tail_matrix(weights: LinearHiddenWeights, width: int) -> np.ndarray:
    """``W_tail`` [width + H, M (+ 2E)] for a fused row of ``width`` columns (see module doc)."""
    assert weights.w_out is not None and weights.b_hid is not None
    m = weights.n_outputs
    h = int(weights.w_out.shape[0])
    e = int(weights.w_exp.shape[1]) if weights.has_experts and weights.w_exp is not None else 0
    tail = np.zeros((width + h, m + 2 * e), dtype=np.float64)
    tail[np.arange(m), np.arange(m)] = 1.0
    tail[width:, :m] = weights.w_out
    if e:
        assert weights.exp_cat is not None and weights.exp_model is not None
        assert weights.exp_gate is not None
        for k in range(e):
            gate = float(weights.exp_gate[k])
            diff = m + k
            tail[m + h + k, diff] = gate  # the head's raw output ...
            tail[:, diff] -= gate * tail[:, int(weights.exp_model[k])]  # ... minus the logit
            tail[width + int(weights.exp_cat[k]), m + e + k] = 1.0  # the category posterior
    return tail.astype(np.float32)


def append_fused_graph(
    helper: Any, numpy_helper: Any, nodes: list[Any], inits: list[Any], weights: LinearHiddenWeights
) -> str:
    """Append the fused int8 graph of ``weights`` (which has a hidden layer) from the inputs
    to the logits; returns the logits' name.

    A table indexed by ``indices mod K`` is tiled to the full hash range (row r holds row
    r mod K) beside the linear table, so one Gather, Cast and MatMul serve all of them.
    """
    assert weights.w_hid is not None and weights.b_hid is not None
    d = int(weights.w_lin.shape[0])
    rows = np.arange(d)
    parts = [(weights.w_lin, 0, weights.b_lin), (weights.w_hid, weights.hidden_mod, weights.b_hid)]
    if weights.has_experts:
        assert weights.w_exp is not None and weights.b_exp is not None
        parts.append((weights.w_exp, weights.exp_mod, weights.b_exp))
    tables = [w if not mod or mod >= d else w[rows % mod] for w, mod, _ in parts]
    q, scale = quantize_columns(np.concatenate(tables, axis=1))
    widths = [int(t.shape[1]) for t in tables]
    width = sum(widths)
    bias = np.concatenate([np.asarray(b, np.float32).reshape(-1) for _, _, b in parts])
    tail = fused_tail_matrix(weights, width)
    m = weights.n_outputs
    e = (tail.shape[1] - m) // 2
    inits += [
        numpy_helper.from_array(np.ascontiguousarray(q), "W_fused"),
        numpy_helper.from_array(scale, "W_fused_scale"),
        numpy_helper.from_array(bias, "fused_bias"),
        numpy_helper.from_array(np.array(widths, dtype=np.int64), "fused_widths"),
        numpy_helper.from_array(tail, "W_tail"),
    ]
    split = ["lin_part", "hid_pre"] + (["exp_part"] if e else [])
    nodes += [
        helper.make_node("Gather", ["W_fused", "indices"], ["fused_rows"], axis=0),
        helper.make_node("Cast", ["fused_rows"], ["fused_rows32"], to=1),
        helper.make_node("MatMul", ["values", "fused_rows32"], ["fused_q"]),
        helper.make_node("Mul", ["fused_q", "W_fused_scale"], ["fused_scaled"]),
        helper.make_node("Add", ["fused_scaled", "fused_bias"], ["fused_sum"]),
        helper.make_node("Split", ["fused_sum", "fused_widths"], split, axis=0),
    ]
    append_activation(helper, numpy_helper, nodes, inits, weights.activation)
    nodes += [
        helper.make_node("Concat", ["fused_sum", "hid"], ["tail_in"], axis=0),
        helper.make_node("MatMul", ["tail_in", "W_tail"], ["tail_out" if e else "logits"]),
    ]
    if not e:
        return "logits"
    assert weights.exp_model is not None
    scatter = np.zeros((e, m), dtype=np.float32)
    scatter[np.arange(e), np.asarray(weights.exp_model, np.int64)] = 1.0
    inits += [
        numpy_helper.from_array(np.array([m, e, e], dtype=np.int64), "tail_widths"),
        numpy_helper.from_array(scatter, "exp_scatter"),
    ]
    nodes.append(
        helper.make_node(
            "Split", ["tail_out", "tail_widths"], ["logits", "exp_diff", "exp_post"], axis=0
        )
    )
    post = append_posterior_gate(helper, numpy_helper, nodes, inits, weights.exp_thr)
    nodes += [
        helper.make_node("Mul", [post, "exp_diff"], ["exp_delta"]),
        helper.make_node("MatMul", ["exp_delta", "exp_scatter"], ["exp_out"]),
        helper.make_node("Add", ["logits", "exp_out"], ["logits_exp"]),
    ]
    return "logits_exp"
