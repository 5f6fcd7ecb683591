"""scripts/test_parts.py runs test parts side by side and fails when any part fails."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_parts_script", ROOT / "scripts" / "test_parts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_part_runs_and_one_failure_fails_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = _load()
    (tmp_path / "test_good.py").write_text("def test_good():\n    print('GOOD RAN')\n")
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert 1 == 2, 'BAD FAILED'\n")
    good = parts.Part("good part", (str(tmp_path / "test_good.py"), "-s"))
    bad = parts.Part("bad part", (str(tmp_path / "test_bad.py"),))
    monkeypatch.setattr(parts, "PARTS", (good, bad))
    assert parts.main(["--only", "good part"]) == 0
    assert "GOOD RAN" in capsys.readouterr().out
    assert parts.main([]) == 1
    out = capsys.readouterr().out
    assert "== bad part: FAILED (exit 1)" in out and "BAD FAILED" in out and "== good part: passed" in out
    table = out.split("== test parts")[1]
    assert table.index("good part") < table.index("bad part"), "the table lists parts in their order"
    with pytest.raises(SystemExit, match="unknown part 'nope'; expected some of 'good part', 'bad part'"):
        parts.main(["--only", "nope"])


def test_side_by_side_parts_get_cpus_of_their_own() -> None:
    parts = _load()
    assert parts.cpu_shares(1) == [[]], "one part at a time is not pinned"
    shares = parts.cpu_shares(2)
    if shares == [[]]:
        pytest.skip("no CPU affinity or taskset here")
    cpus = [cpu for share in shares for cpu in share]
    assert all(shares) and sorted(cpus) == sorted(os.sched_getaffinity(0)), "disjoint shares of every allowed CPU"
    assert len(shares) == min(2, len(cpus))
