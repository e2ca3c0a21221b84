"""The golden-file switch: ``SYMDIFF_REGEN_GOLDEN=1`` rewrites a golden, except under ``CI``,
where it fails the test and writes nothing (a regenerating run passes by construction)."""

from __future__ import annotations

import golden_support
import pytest
from golden_support import assert_golden


@pytest.fixture
def golden_dir(tmp_path, monkeypatch):
    """A scratch golden folder holding ``case.txt`` = "stored"."""
    monkeypatch.setattr(golden_support, "GOLDEN", tmp_path)
    (tmp_path / "case.txt").write_text("stored\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("ci", ["1", "true", "TRUE", "yes", "github-actions"])
def test_regeneration_is_refused_under_ci(golden_dir, monkeypatch, ci: str) -> None:
    monkeypatch.setenv("SYMDIFF_REGEN_GOLDEN", "1")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="SYMDIFF_REGEN_GOLDEN=1 is refused"):
        assert_golden("case.txt", "new output")
    assert (golden_dir / "case.txt").read_text(encoding="utf-8") == "stored\n"


@pytest.mark.parametrize("ci", [None, "", "0", "false", "False"])
def test_regeneration_outside_ci_rewrites_the_golden(golden_dir, monkeypatch, ci) -> None:
    monkeypatch.setenv("SYMDIFF_REGEN_GOLDEN", "1")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert_golden("case.txt", "new output")
    assert (golden_dir / "case.txt").read_text(encoding="utf-8") == "new output\n"


@pytest.mark.parametrize("ci", [None, "1"])
def test_without_the_switch_a_difference_fails_and_nothing_is_written(
    golden_dir, monkeypatch, ci
) -> None:
    monkeypatch.delenv("SYMDIFF_REGEN_GOLDEN", raising=False)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert_golden("case.txt", "stored")
    with pytest.raises(AssertionError, match="case.txt differs from its golden file"):
        assert_golden("case.txt", "new output")
    assert (golden_dir / "case.txt").read_text(encoding="utf-8") == "stored\n"
