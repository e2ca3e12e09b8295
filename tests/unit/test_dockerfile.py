"""Static checks of the Dockerfile and .dockerignore (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    """One build stage: its base image, name and instructions (keyword, raw arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments and blank lines."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=base, name=name))
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def _copy_sources(args: str) -> tuple[dict[str, str], list[str]]:
    """Flags and sources of a COPY/ADD instruction (the last word is the destination)."""
    words = _exec_form(args) if args.startswith("[") else shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    assert len(words) >= 2, f"COPY needs a source and a destination: {args}"
    return flags, words[:-1]


def _ignore_rules() -> list[tuple[bool, re.Pattern[str], int]]:
    """(.dockerignore) rules as (negated, regex, number of path components)."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                regex += ".*"
                i += 2
                if pattern.startswith("/", i):
                    regex += "/?"
                    i += 1
                continue
            ch = pattern[i]
            regex += "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)
            i += 1
        rules.append((negated, re.compile(f"^{regex}$"), pattern.count("/") + 1))
    return rules


def _excluded(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also matches a parent dir."""
    parts = path.split("/")
    excluded = False
    for negated, regex, n_parts in _ignore_rules():
        match = bool(regex.match(path))
        if not match and n_parts < len(parts):
            match = bool(regex.match("/".join(parts[:n_parts])))
        if match:
            excluded = not negated
    return excluded


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    _, parsed = _parse(DOCKERFILE.read_text())
    return parsed


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_multi_stage_on_slim_python_311(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    builder, runtime = stages[0], stages[-1]
    assert any("pip wheel" in run for run in builder.all("RUN")), "the builder must `pip wheel .`"
    # the runtime stage takes the built environment from the builder, not from the network
    assert not any("pip wheel" in run or "apt-get install" in run for run in runtime.all("RUN"))
    assert any(f"--from={builder.name}" in c for c in runtime.all("COPY"))


def test_every_copy_source_exists_in_the_repo(stages: list[Stage]) -> None:
    copies = [(s.name, a) for s in stages for kw, a in s.instructions if kw in ("COPY", "ADD")]
    assert copies
    for stage_name, args in copies:
        flags, sources = _copy_sources(args)
        if "from" in flags:
            assert flags["from"] in {s.name for s in stages}, f"{stage_name}: COPY {args}"
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source!r} is not in the repo"
            if source not in (".", "./"):
                assert not _excluded(source.strip("/")), f"{source!r} is excluded by .dockerignore"


def test_dockerignore_lets_the_packages_in_and_keeps_junk_out(pyproject: dict[str, object]) -> None:
    setuptools_cfg = pyproject["tool"]["setuptools"]  # type: ignore[index]
    packages = [p.rstrip("*") for p in setuptools_cfg["packages"]["find"]["include"]]
    needed = ["pyproject.toml", "setup.py", *(f"{p}/__init__.py" for p in packages)]
    for path in needed:
        assert not _excluded(path), f"{path} must reach the build context"
    for junk in [
        ".git/config",
        ".venv/bin/python",
        "tests/unit/test_x.py",
        "router_core/x.so",
        "router_svc/__pycache__/a.pyc",
        "clients/node/node_modules/x/index.js",
        "artifacts/model.onnx",
        "helm/llm-router/Chart.yaml",
    ]:
        assert _excluded(junk), f"{junk} should not be in the build context"


def test_runtime_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # numeric, so that Kubernetes runAsNonRoot can check it without /etc/passwd
    assert user.isdigit() and int(user) >= 1000


def test_entrypoint_is_the_installed_console_script(
    stages: list[Stage], pyproject: dict[str, object]
) -> None:
    scripts = pyproject["project"]["scripts"]  # type: ignore[index]
    entry = _exec_form(stages[-1].all("ENTRYPOINT")[-1])
    assert entry[0] in scripts, f"ENTRYPOINT {entry} is not a [project.scripts] name"
    module, _, func = scripts[entry[0]].partition(":")
    source = ROOT / (module.replace(".", "/") + ".py")
    if not source.exists():
        source = ROOT / module.replace(".", "/") / "__init__.py"
    assert re.search(rf"^def {func}\(", source.read_text(), re.MULTILINE), (
        f"{module}:{func} not found"
    )
    cmd = _exec_form(stages[-1].all("CMD")[-1])
    assert cmd[0] == "serve" and "--port" in cmd


def test_runtime_writes_only_under_tmp(stages: list[Stage]) -> None:
    env = " ".join(stages[-1].all("ENV"))
    for var in ("HOME", "TMPDIR", "MPLCONFIGDIR"):
        value = re.search(rf"\b{var}=(\S+)", env)
        assert value and value.group(1).startswith("/tmp"), f"{var} must point under /tmp"
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    workdir = stages[-1].all("WORKDIR")[-1]
    assert workdir.startswith("/tmp")
