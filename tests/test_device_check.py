"""bench/device_check.py --quick: the GPU machine's one command runs end to end on this CPU, so
it cannot rot before a GPU runs it."""

import json
import math
import os
import subprocess
import sys

from test_tasks import REPO


def test_device_check_quick_measures_every_part_and_writes_json(tmp_path):
    out = tmp_path / "check.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "device_check.py"), "--quick", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(out.read_text())
    assert found["quick"] and found["device"].startswith("CPU") and found["tensorflow"]
    rows = {row["what"]: row for row in found["rows"]}
    assert {row["part"] for row in found["rows"]} == {"a", "b", "c"}
    assert all(math.isfinite(row["value"]) and row["value"] >= 0 for row in rows.values())
    assert all(row["peak_mib"] is None for row in rows.values())  # no GPU: no device memory
    assert rows["TV-L1 TensorFlow vs OpenCV, 2 pairs: mean end-point error"]["value"] <= 0.05
    assert len([w for w in rows if w.startswith("VGG-16")]) == 2
    for model in ("ConvALSTM", "VideoLSTM"):
        assert 0 <= rows[f"{model}: step time waiting on input"]["value"] < 1
    assert "TV-L1 TensorFlow 64x48, batch 2" in result.stdout
