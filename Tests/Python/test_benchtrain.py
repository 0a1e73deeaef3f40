"""make bench-training's script (csdformer.benchtrain) end to end on the tiny model: one step per epoch, both
routes in their own processes, the conversion route packed and verified by csdpack."""

from __future__ import annotations

import json
import os

import pytest

from conftest import CSDPACK, needs_csdpack, needs_fashion_mnist, write_config
from csdformer import benchtrain

KEYS = ("epochs", "seconds", "seconds_per_epoch", "peak_rss_bytes", "test_accuracy")


@needs_fashion_mnist
@needs_csdpack
def test_bench_training_measures_both_routes(tmp_path, capsys, clean_dist_env):
    config = write_config(tmp_path)
    out_json = tmp_path / "models" / "training_cost.json"
    args = ["--config", config, "--float-epochs", "1", "--qat-epochs", "1", "--csdpack", CSDPACK,
            "--out", str(tmp_path / "bench"), "--json", str(out_json),
            "--limit-train", "64", "--limit-test", "32", "--max-steps", "1"]
    assert benchtrain.main(args) == 0
    log = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    for route in ("conversion", "direct"):
        entry = doc[route]
        for key in KEYS:
            assert key in entry, (route, key)
        assert entry["epochs"] == 2
        assert entry["seconds"] > 0 and entry["seconds_per_epoch"] >= 0
        assert entry["peak_rss_bytes"] > 50 * 2**20  # a python process with torch loaded
        assert 0.0 <= entry["test_accuracy"] <= 1.0
        assert len(entry["history"]) == 2
    conv, direct = doc["conversion"], doc["direct"]
    assert conv["epochs_by_phase"] == {"float": 1, "qat": 1}
    assert direct["epochs_by_phase"] == {"direct": 1, "direct-low-lr": 1}
    # the conversion route's accuracy is the packed integer model's, on the same test images
    assert conv["packed_test_images"] == 32 and "csdpack verify" in conv["test_accuracy_of"]
    assert os.path.isfile(tmp_path / "bench" / "conversion" / "model.csd")
    assert direct["neuron"]["surrogate"].startswith("ATan")
    assert doc["budget"]["float_epochs"] == 1 and doc["budget"]["qat_epochs"] == 1
    assert doc["versions"]["spikingjelly"] and doc["versions"]["torch"]
    ratios = doc["ratios_direct_over_conversion"]
    assert ratios["epochs"] == 1.0
    assert ratios["peak_rss_bytes"] == pytest.approx(direct["peak_rss_bytes"] / conv["peak_rss_bytes"], abs=0.01)
    assert "| seconds per epoch (training steps) |" in log and "| direct / conversion |" in log
    assert "budget: 1 float + 1 QAT epochs" in log


def test_failed_route_stops_the_bench(tmp_path, capsys, clean_dist_env):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"dataset": "fashion-mnist", "model": {"heads": 3}}))  # width 64 is not divisible by 3
    args = ["--config", str(bad), "--float-epochs", "1", "--qat-epochs", "0", "--csdpack", "/nonexistent",
            "--out", str(tmp_path / "bench")]
    assert benchtrain.main(args) == 1
    assert "conversion route failed" in capsys.readouterr().err
