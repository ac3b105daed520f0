"""Outputs come into place by rename: a failed body leaves nothing, a killed run's leftovers are
removed by the next writer of the same target."""

from __future__ import annotations

from pathlib import Path

import luigi
import pytest

from pipeline.outputs import written


def test_a_killed_runs_temporary_outputs_are_removed_by_the_next_writer(tmp_path):
    target = luigi.LocalTarget(str(tmp_path / "model-abc"))
    killed_folder = tmp_path / "model-abc-luigi-tmp-0123456789"
    (killed_folder / "logs").mkdir(parents=True)
    (killed_folder / "logs" / "events").write_text("x")
    killed_file = tmp_path / "model-abc-luigi-tmp-9876543210"
    killed_file.write_text("half")
    other = tmp_path / "model-abcd-luigi-tmp-0123456789"
    other.write_text("another target's")
    with written(target) as tmp:
        assert not killed_folder.exists() and not killed_file.exists()
        Path(tmp).mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-abc",
                                                          "model-abcd-luigi-tmp-0123456789"]


def test_a_failed_body_leaves_nothing(tmp_path):
    target = luigi.LocalTarget(str(tmp_path / "shard.h5"))
    with pytest.raises(OSError, match="No space"):
        with written(target) as tmp:
            Path(tmp).write_text("partial")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
