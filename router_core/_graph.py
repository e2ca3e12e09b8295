"""Build the ONNX graph of a quality model from its weights, and read the weights back.

The graph's maths is described in ``router_core._classifier``; int8 models with a hidden layer
use the fused graph of ``router_core._fused_graph``, everything else one table per part.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router_core._classifier import LinearHiddenWeights, quantize_columns

__all__ = [
    "IR_VERSION",
    "OPSET",
    "append_activation",
    "append_posterior_gate",
    "build_classifier_graph",
    "read_weights",
]

OPSET = 18  # BitwiseAnd (the hidden table's power-of-two index mask)
IR_VERSION = 8


def _bag(
    helper: Any, nodes: list[Any], table: str, dtype: np.dtype[Any], out: str, idx: str = "indices"
) -> None:
    """Append nodes computing ``values @ table[idx]`` ([K]) into ``out``.

    A (1-D) MatMul of the [N] values with the gathered [N, K] rows is several times faster in
    onnxruntime than Mul + ReduceSum over axis 0. An int8 table is scaled per column after
    the MatMul (initialiser ``{table}_scale``), so the [N, K] rows are only cast.
    """
    nodes.append(helper.make_node("Gather", [table, idx], [f"{out}_rows"], axis=0))
    rows = f"{out}_rows"
    if dtype != np.float32:
        nodes.append(helper.make_node("Cast", [rows], [f"{out}_rows32"], to=1))
        rows = f"{out}_rows32"
    if dtype == np.int8:
        nodes.append(helper.make_node("MatMul", ["values", rows], [f"{out}_q"]))
        nodes.append(helper.make_node("Mul", [f"{out}_q", f"{table}_scale"], [out]))
    else:
        nodes.append(helper.make_node("MatMul", ["values", rows], [out]))


def _table(
    numpy_helper: Any, inits: list[Any], name: str, w: np.ndarray, dtype: np.dtype[Any]
) -> None:
    """Append the initialiser(s) of a [D, K] weight table stored as ``dtype``."""
    if dtype == np.int8:
        q, scale = quantize_columns(w)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(q), name))
        inits.append(numpy_helper.from_array(scale, f"{name}_scale"))
    else:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w, dtype=dtype), name))


_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8}


def _dtype(storage: str) -> np.dtype[Any]:
    if storage not in _DTYPES:
        raise ValueError(f"unknown table storage {storage!r}; expected one of {', '.join(_DTYPES)}")
    return np.dtype(_DTYPES[storage])


def _index_mod(
    helper: Any, numpy_helper: Any, nodes: list[Any], inits: list[Any], mod: int, out: str
) -> None:
    """Append ``out = indices mod mod`` (a BitwiseAnd mask when ``mod`` is a power of two:
    several times cheaper than onnxruntime's Mod)."""
    if mod & (mod - 1) == 0:
        inits.append(numpy_helper.from_array(np.array(mod - 1, dtype=np.int64), f"{out}_mask"))
        nodes.append(helper.make_node("BitwiseAnd", ["indices", f"{out}_mask"], [out]))
    else:
        inits.append(numpy_helper.from_array(np.array(mod, dtype=np.int64), f"{out}_mod"))
        nodes.append(helper.make_node("Mod", ["indices", f"{out}_mod"], [out]))


def _bags(
    helper: Any,
    numpy_helper: Any,
    nodes: list[Any],
    inits: list[Any],
    weights: LinearHiddenWeights,
    dtypes: tuple[np.dtype[Any], np.dtype[Any], np.dtype[Any]],
) -> None:
    """Append nodes computing ``lin_sum`` [M], ``hid_sum`` [H] and ``exp_sum`` [E] (those the
    weights have) from the sparse input, one Gather per table (int8 tables with a hidden layer
    are fused instead: ``router_core._fused_graph``)."""
    parts: list[tuple[str, np.ndarray, int, np.dtype[Any]]] = [("lin", weights.w_lin, 0, dtypes[0])]
    if weights.w_hid is not None:
        parts.append(("hid", weights.w_hid, weights.hidden_mod, dtypes[1]))
    if weights.has_experts:
        assert weights.w_exp is not None
        parts.append(("exp", weights.w_exp, weights.exp_mod, dtypes[2]))
    done: dict[int, str] = {0: "indices"}
    for name, w, mod, dtype in parts:
        _table(numpy_helper, inits, f"W_{name}", w, dtype)
        idx = done.get(mod)
        if idx is None:
            idx = done[mod] = f"{name}_idx"
            _index_mod(helper, numpy_helper, nodes, inits, mod, idx)
        _bag(helper, nodes, f"W_{name}", dtype, f"{name}_sum", idx)


def append_posterior_gate(
    helper: Any, numpy_helper: Any, nodes: list[Any], inits: list[Any], thr: np.ndarray | None
) -> str:
    """Append the experts' hard gate on ``exp_post`` (a head acts only where its category
    posterior exceeds its threshold); returns the gated posteriors' name (``exp_post`` itself
    when no threshold is set)."""
    if thr is None or not np.any(np.asarray(thr) > 0):
        return "exp_post"
    inits += [
        numpy_helper.from_array(np.asarray(thr, np.float32).reshape(-1), "exp_thr"),
        numpy_helper.from_array(np.zeros(1, np.float32), "exp_zero"),
    ]
    nodes += [
        helper.make_node("Greater", ["exp_post", "exp_thr"], ["exp_on"]),
        helper.make_node("Where", ["exp_on", "exp_post", "exp_zero"], ["exp_post_on"]),
    ]
    return "exp_post_on"


def _experts(
    helper: Any,
    numpy_helper: Any,
    nodes: list[Any],
    inits: list[Any],
    weights: LinearHiddenWeights,
) -> str:
    """Append the category-expert nodes after ``exp_sum``, ``logits`` and ``hid``; returns the
    new logits."""
    assert weights.w_exp is not None and weights.b_exp is not None
    assert weights.exp_cat is not None and weights.exp_model is not None
    assert weights.exp_gate is not None
    e, m = int(weights.w_exp.shape[1]), weights.n_outputs
    scatter = np.zeros((e, m), dtype=np.float32)
    scatter[np.arange(e), np.asarray(weights.exp_model, np.int64)] = 1.0
    inits += [
        numpy_helper.from_array(np.asarray(weights.b_exp, np.float32).reshape(e), "b_exp"),
        numpy_helper.from_array(np.asarray(weights.exp_cat, np.int64).reshape(e), "exp_cat"),
        numpy_helper.from_array(np.asarray(weights.exp_model, np.int64).reshape(e), "exp_model"),
        numpy_helper.from_array(np.asarray(weights.exp_gate, np.float32).reshape(e), "exp_gate"),
        numpy_helper.from_array(scatter, "exp_scatter"),
    ]
    nodes += [
        helper.make_node("Add", ["exp_sum", "b_exp"], ["exp_raw"]),
        helper.make_node("Gather", ["logits", "exp_model"], ["exp_base"], axis=0),
        helper.make_node("Sub", ["exp_raw", "exp_base"], ["exp_diff"]),
        helper.make_node("Gather", ["hid", "exp_cat"], ["exp_post"], axis=0),
    ]
    post = append_posterior_gate(helper, numpy_helper, nodes, inits, weights.exp_thr)
    nodes += [
        helper.make_node("Mul", [post, "exp_gate"], ["exp_w"]),
        helper.make_node("Mul", ["exp_w", "exp_diff"], ["exp_delta"]),
        helper.make_node("MatMul", ["exp_delta", "exp_scatter"], ["exp_out"]),
        helper.make_node("Add", ["logits", "exp_out"], ["logits_exp"]),
    ]
    return "logits_exp"


def append_activation(
    helper: Any, numpy_helper: Any, nodes: list[Any], inits: list[Any], kind: str
) -> None:
    """Append ``hid = act(hid_pre)`` for activation ``kind`` (softmax, ovr or relu)."""
    if kind == "softmax":
        nodes.append(helper.make_node("Softmax", ["hid_pre"], ["hid"], axis=-1))
    elif kind == "ovr":
        inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"))
        nodes += [
            helper.make_node("Sigmoid", ["hid_pre"], ["hid_sig"]),
            helper.make_node("ReduceSum", ["hid_sig", "axis0"], ["hid_total"], keepdims=1),
            helper.make_node("Div", ["hid_sig", "hid_total"], ["hid"]),
        ]
    else:
        nodes.append(helper.make_node("Relu", ["hid_pre"], ["hid"]))


def _separate_graph(
    helper: Any,
    numpy_helper: Any,
    nodes: list[Any],
    inits: list[Any],
    weights: LinearHiddenWeights,
    dtype: np.dtype[Any],
    expert_storage: str | None,
) -> str:
    """Append the graph with one table per part (float32/float16, or int8 without a hidden
    layer) up to the logits; returns their name."""
    hid_dtype = np.dtype(np.float16) if dtype == np.int8 else dtype
    exp_dtype = hid_dtype if expert_storage is None else _dtype(expert_storage)
    m = weights.n_outputs
    inits.append(numpy_helper.from_array(np.asarray(weights.b_lin, np.float32).reshape(m), "b_lin"))
    _bags(helper, numpy_helper, nodes, inits, weights, (dtype, hid_dtype, exp_dtype))
    nodes.append(helper.make_node("Add", ["lin_sum", "b_lin"], ["lin"]))
    logits = "lin"
    if weights.w_hid is not None and weights.w_out is not None and weights.b_hid is not None:
        h = int(weights.w_hid.shape[1])
        inits += [
            numpy_helper.from_array(np.asarray(weights.b_hid, np.float32).reshape(h), "b_hid"),
            numpy_helper.from_array(np.asarray(weights.w_out, np.float32).reshape(h, m), "W_out"),
        ]
        nodes.append(helper.make_node("Add", ["hid_sum", "b_hid"], ["hid_pre"]))
        append_activation(helper, numpy_helper, nodes, inits, weights.activation)
        nodes += [
            helper.make_node("MatMul", ["hid", "W_out"], ["hid_out"]),
            helper.make_node("Add", ["lin", "hid_out"], ["logits"]),
        ]
        logits = "logits"
        if weights.has_experts:
            logits = _experts(helper, numpy_helper, nodes, inits, weights)
    return logits


def build_classifier_graph(
    weights: LinearHiddenWeights,
    storage: str = "float32",
    output_name: str = "quality",
    doc: str = "",
    expert_storage: str | None = None,
) -> bytes:
    """Serialise ``weights`` as an ONNX model (bytes) with inputs ``indices``/``values``.

    Args:
        storage: "float32", "float16" or "int8" for the [D, *] tables (biases stay
            float32). "int8" with a hidden layer fuses every table into one
            [D, M + H (+ E)] table quantised per column (``router_core._fused_graph``).
        expert_storage: the storage of an unfused category-expert table (None: ``storage``).

    Raises:
        ValueError: an unknown storage name.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dtype = _dtype(storage)
    m = weights.n_outputs
    inits: list[Any] = []
    nodes: list[Any] = []
    if dtype == np.int8 and weights.w_hid is not None and weights.w_out is not None:
        from router_core._fused_graph import append_fused_graph

        logits = append_fused_graph(helper, numpy_helper, nodes, inits, weights)
    else:
        logits = _separate_graph(helper, numpy_helper, nodes, inits, weights, dtype, expert_storage)
    nodes.append(helper.make_node("Sigmoid", [logits], [output_name]))
    graph = helper.make_graph(
        nodes,
        "llm_router_quality",
        [
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N"]),
        ],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [m])],
        initializer=inits,
        doc_string=doc,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="llm-router",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def read_weights(model: bytes) -> LinearHiddenWeights:
    """The weights of a graph ``build_classifier_graph`` wrote with separate tables (float32 or
    float16 storage), for re-export with another storage (``llm-router convert-model``).

    Raises:
        ValueError: not such a graph (fused int8 tables cannot be read back exactly).
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load_from_string(model).graph
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors
        raise ValueError(f"model.onnx is not an ONNX model ({type(exc).__name__})") from exc
    t = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    if "W_fused" in t or "W_lin" not in t or t["W_lin"].dtype == np.int8:
        raise ValueError("only float32/float16 classifier graphs can be converted")
    ops = {n.op_type for n in graph.node}

    def f32(name: str) -> np.ndarray | None:
        return None if name not in t else np.asarray(t[name], dtype=np.float32)

    producers = {n.output[0]: n for n in graph.node}

    def mod(table: str) -> int:
        """The ``K`` of ``indices mod K`` that indexes ``table`` (0: the full index)."""
        gather = next(
            (n for n in graph.node if n.op_type == "Gather" and n.input[0] == table), None
        )
        node = None if gather is None else producers.get(gather.input[1])
        if node is None:
            return 0
        k = int(t[node.input[1]])
        return k + 1 if node.op_type == "BitwiseAnd" else k

    activation = "softmax" if "Softmax" in ops else "ovr" if "Div" in ops else "relu"
    return LinearHiddenWeights(
        w_lin=np.asarray(t["W_lin"], dtype=np.float32),
        b_lin=np.asarray(t["b_lin"], dtype=np.float32),
        w_hid=f32("W_hid"),
        b_hid=f32("b_hid"),
        w_out=f32("W_out"),
        activation=activation,
        hidden_mod=mod("W_hid"),
        w_exp=f32("W_exp"),
        b_exp=f32("b_exp"),
        exp_cat=t.get("exp_cat"),
        exp_model=t.get("exp_model"),
        exp_gate=f32("exp_gate"),
        exp_thr=f32("exp_thr"),
        exp_mod=mod("W_exp"),
    )
