"""The checked-in stubs in llm_router/v1/ are exactly what scripts/gen_protos.sh generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_match_the_proto() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_expose_the_router_service() -> None:
    from llm_router.v1 import router_pb2, router_pb2_grpc

    service = router_pb2.DESCRIPTOR.services_by_name["Router"]
    assert [m.name for m in service.methods] == ["Route", "RouteStream", "Complete", "Feedback"]
    assert hasattr(router_pb2_grpc, "RouterStub")
