"""Loaders for RouteLLM CSV, RouterBench CSV and generic JSONL outcome data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from router_core._datasets import (
    load_contaminated,
    load_dataset,
    load_file,
    parse_turns,
    sniff_format,
)
from router_core.errors import DataError

ROUTELLM = (
    "prompt,weak-m,strong-m,weak-m_response,strong-m_response\n"
    '"What is 2+2?\nA. 3\nB. 4",True,True,B,B\n'
    '"Hard one, with ""quotes""",False,True,no idea,42\n'
    "Third,False,False,,\n"
)
ROUTERBENCH = (
    ",sample_id,prompt,eval_name,m-a,m-b,m-a|model_response,m-b|model_response,"
    "m-a|total_cost,m-b|total_cost,oracle_model_to_route_to\n"
    "0,s.1,\"['Write a function.', 'Second turn']\",mbpp,1.0,0.0,\"['def f(): pass']\",\"['x']\",0.01,0.0001,m-a\n"
    "1,s.2,not a list [,mbpp,0.0,1.0,,,0.02,0.0002,m-b\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_routellm_wide_csv(tmp_path: Path) -> None:
    p = _write(tmp_path, "mmlu/mmlu_x.csv", ROUTELLM)
    assert sniff_format(p) == "routellm"
    ds = load_file(p)
    assert ds.model_names == ("weak-m", "strong-m")
    assert ds.prompts[0] == "What is 2+2?\nA. 3\nB. 4"
    assert ds.prompts[1] == 'Hard one, with "quotes"'
    np.testing.assert_array_equal(ds.outcomes, [[1, 1], [0, 1], [0, 0]])
    assert np.isnan(ds.costs).all()
    assert ds.responses["strong-m"] == ["B", "42", None]
    assert ds.groups == ["mmlu"] * 3 and ds.sources == ["mmlu_x"] * 3


def test_routerbench_csv_parses_turns_and_costs(tmp_path: Path) -> None:
    p = _write(tmp_path, "rb.csv", ROUTERBENCH)
    assert sniff_format(p) == "routerbench"
    ds = load_file(p)
    assert ds.model_names == ("m-a", "m-b")
    assert ds.prompts == ["Write a function.\nSecond turn", "not a list ["]
    np.testing.assert_allclose(ds.costs, [[0.01, 0.0001], [0.02, 0.0002]])
    np.testing.assert_array_equal(ds.outcomes, [[1, 0], [0, 1]])
    assert ds.responses["m-a"] == ["def f(): pass", None]


def test_parse_turns_is_safe() -> None:
    assert parse_turns("['a', 'b']") == "a\nb"
    assert (
        parse_turns("[__import__('os').system('echo hi')]")
        == "[__import__('os').system('echo hi')]"
    )
    assert parse_turns("[1, 2]") == "[1, 2]"
    assert parse_turns("plain") == "plain"


def test_jsonl_with_missing_models_is_masked(tmp_path: Path) -> None:
    lines = [
        {
            "prompt": "a",
            "outcomes": {"x": 1, "y": 0.5},
            "costs": {"x": 0.1, "y": 0.01},
            "responses": {"x": "ans"},
            "category": "code",
        },
        {"prompt": "b", "outcomes": {"y": 0}},
    ]
    p = _write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    ds = load_file(p)
    assert ds.model_names == ("x", "y")
    assert ds.outcomes[0].tolist() == [1.0, 0.5]
    assert np.isnan(ds.outcomes[1, 0]) and ds.outcomes[1, 1] == 0
    assert ds.categories == ["code", ""]
    assert ds.responses == {"x": ["ans", None]}


def test_directory_is_searched_recursively_and_stacked(tmp_path: Path) -> None:
    _write(tmp_path, "a/one.csv", ROUTELLM)
    _write(tmp_path, "b/c/two.csv", ROUTERBENCH)
    _write(tmp_path, "a/contaminated_prompts.jsonl", json.dumps({"eval_prompt": "Third"}) + "\n")
    ds = load_dataset([tmp_path])
    assert len(ds) == 5
    assert ds.model_names == ("weak-m", "strong-m", "m-a", "m-b")
    assert np.isnan(ds.outcomes[0, 2]) and np.isnan(ds.outcomes[4, 0])
    assert load_contaminated([tmp_path]) == {"Third"}
    assert load_contaminated([tmp_path / "a" / "one.csv"]) == {"Third"}
    sub = ds.subset(np.array([True, False, False, True, False]))
    assert sub.prompts == [ds.prompts[0], ds.prompts[3]]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "empty.csv: the file is empty"),
        ("noprompt.csv", "question,m\nq,True\n", "no 'prompt' column"),
        ("header.csv", "prompt,m\n", "header but no rows"),
        ("bad.csv", "prompt,m\nq,maybe\n", r"bad.csv:2: column 'm'"),
        ("ragged.csv", "prompt,m\nq,True,extra\n", r"ragged.csv:2: expected 2 fields"),
        ("nomodels.csv", "prompt\nq\n", "no model outcome columns"),
        ("range.csv", "prompt,m\nq,3\n", "between 0 and 1"),
        ("bad.jsonl", "{not json\n", r"bad.jsonl:1: invalid JSON"),
        ("noout.jsonl", '{"prompt": "x"}\n', "non-empty 'outcomes'"),
        ("empty.jsonl", "\n", "empty.jsonl: the file is empty"),
        ("rb.csv", ",prompt,m|total_cost\n0,q,0.1\n", "RouterBench format needs"),
    ],
)
def test_bad_files_raise_one_line_data_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    p = _write(tmp_path, name, text)
    with pytest.raises(DataError, match=message) as info:
        load_dataset([p])
    assert "\n" not in str(info.value)
    assert name in str(info.value)


def test_missing_path_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such data file"):
        load_dataset([tmp_path / "missing.csv"])
    with pytest.raises(DataError, match="no .csv or .jsonl"):
        load_dataset([tmp_path])
    with pytest.raises(DataError, match="unknown data format"):
        load_file(_write(tmp_path, "x.csv", ROUTELLM), "excel")
