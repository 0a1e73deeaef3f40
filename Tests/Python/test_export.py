"""Export for csdpack and its round trip (csdformer.export)."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import calibrate_clips, randomize, tiny_config_dict
from csdformer.export import (CONFIG_FILE, EXPORT_FORMAT, EXPORT_VERSION, METRICS_FILE, PREDICTIONS_FILE,
                              WEIGHTS_FILE, export_model, load_export)
from csdformer.model import CSDformer, ModelConfig
from csdformer.quant import qcfs_count

# tensor-name roles in the graph (every other string in the graph is a name, kind or description)
TENSOR_KEYS = {"weight", "bias", "running_mean", "running_var", "clip", "pos_embed"}


def _build(phase: str, seed: int = 0) -> tuple[CSDformer, dict]:
    cfg = tiny_config_dict()
    torch.manual_seed(seed)
    model = CSDformer(ModelConfig.from_dict(cfg["model"]))
    randomize(model, seed + 1)
    calibrate_clips(model, torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 2)))
    with torch.no_grad():
        model.pos_embed.normal_(0, 0.1)
        model.head.bias.normal_(0, 0.1)
    model.set_phase(phase)
    model.eval()
    return model, cfg


def _export(tmp_path, phase="qat", predictions=True):
    model, cfg = _build(phase)
    out = str(tmp_path / "export")
    preds = torch.randint(0, 10, (37,), generator=torch.Generator().manual_seed(5)) if predictions else None
    metrics = {"params": 1, "fake_quant_test_accuracy": 0.5, "history": [{"epoch": 1}]}
    export_model(model, cfg, out, metrics, preds)
    return model, cfg, out, preds, metrics


def _tensor_refs(node, refs):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in TENSOR_KEYS and isinstance(v, str):
                refs.append(v)
            else:
                _tensor_refs(v, refs)
    elif isinstance(node, list):
        for v in node:
            _tensor_refs(v, refs)
    return refs


@pytest.mark.parametrize("phase", ["qat", "float"])
def test_round_trip_outputs_identical(tmp_path, phase):
    model, _, out, _, _ = _export(tmp_path, phase)
    loaded = load_export(out)
    assert loaded.phase == phase
    assert not loaded.training
    assert loaded.cfg == model.cfg
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a, b)
    # the model is not degenerate (the comparison would be weak if every logit were equal)
    assert float(a.std()) > 0
    for (n, p), (n2, p2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n == n2
        if not n.endswith("num_batches_tracked"):
            assert torch.equal(p, p2), n


def test_model_json_documented_keys(tmp_path):
    model, cfg, out, _, metrics = _export(tmp_path)
    with open(os.path.join(out, CONFIG_FILE)) as f:
        doc = json.load(f)
    for key in ("format", "version", "graph", "tensors", "time_steps", "levels", "input_normalization"):
        assert key in doc, key
    assert doc["format"] == EXPORT_FORMAT == "csdformer-export"
    assert doc["version"] == EXPORT_VERSION == 1
    assert doc["phase"] == "qat"
    assert doc["time_steps"] == 4 and doc["levels"] == 3
    assert doc["input_normalization"]["scale"] == pytest.approx(1 / 255)
    assert doc["input_normalization"]["mean"] == [0.0] and doc["input_normalization"]["std"] == [1.0]
    assert doc["dataset"] == {"id": "fashion-mnist", "classes": 10, "input_shape": [1, 28, 28],
                              "input_dtype": "uint8"}
    assert doc["model"] == ModelConfig.from_dict(cfg["model"]).to_dict()
    assert doc["predictions"] == PREDICTIONS_FILE
    # model.json carries the metrics summary without the per-epoch history; metrics.json has everything
    assert "history" not in doc["metrics"] and doc["metrics"]["params"] == 1
    with open(os.path.join(out, METRICS_FILE)) as f:
        assert json.load(f) == metrics


def test_graph_tensor_names_and_shapes(tmp_path):
    model, _, out, _, _ = _export(tmp_path)
    with open(os.path.join(out, CONFIG_FILE)) as f:
        doc = json.load(f)
    with safe_open(os.path.join(out, WEIGHTS_FILE), framework="pt") as st:
        stored = {k: list(st.get_tensor(k).shape) for k in st.keys()}
        dtypes = {st.get_tensor(k).dtype for k in st.keys()}
    assert dtypes == {torch.float32}
    # the listing matches the file exactly
    assert set(doc["tensors"]) == set(stored)
    for name, meta in doc["tensors"].items():
        assert meta == {"dtype": "F32", "shape": stored[name]}, name
    # every tensor the graph refers to exists, and the graph uses every stored tensor
    refs = _tensor_refs(doc["graph"], [])
    assert refs and set(refs) <= set(stored), sorted(set(refs) - set(stored))
    assert set(stored) == set(refs), sorted(set(stored) - set(refs))
    assert not any(k.endswith("num_batches_tracked") for k in stored)

    cfg = model.cfg
    kinds = [layer["kind"] for layer in doc["graph"]]
    assert kinds == ["conv3x3_bn"] * 3 + ["tokens"] + ["attention", "mlp"] * cfg.depth + ["head"]
    # shapes line up with the layer descriptions
    for layer in doc["graph"]:
        if layer["kind"] == "conv3x3_bn":
            cin, cout = layer["in_shape"][0], layer["out_shape"][0]
            assert stored[layer["weight"]] == [cout, cin, 3, 3]
            for t in layer["bn"].values():
                assert stored[t] == [cout]
        elif layer["kind"] == "tokens":
            assert stored[layer["pos_embed"]] == [cfg.tokens, cfg.embed_dim] == [49, 8]
        elif layer["kind"] in ("attention", "mlp"):
            for role in ("q", "k", "v", "proj", "fc1", "fc2"):
                if role in layer:
                    lin = layer[role]
                    assert stored[lin["weight"]] == [lin["out_features"], lin["in_features"]]
                    for t in lin["bn"].values():
                        assert stored[t] == [lin["out_features"]]
        elif layer["kind"] == "head":
            assert stored[layer["weight"]] == [10, 8] and stored[layer["bias"]] == [10]
        for clip in _tensor_refs({k: v for k, v in layer.items() if k.endswith("quant")}, []):
            assert stored[clip] == [1]
    convs = [layer for layer in doc["graph"] if layer["kind"] == "conv3x3_bn"]
    assert [c["in_shape"] for c in convs] == [[1, 28, 28], [4, 28, 28], [8, 14, 14]]
    assert [c["out_shape"] for c in convs] == [[4, 28, 28], [8, 14, 14], [8, 7, 7]]
    assert convs[0]["input"] == "pixels" and convs[0]["quant"] is None
    # stored values are the model's values
    with safe_open(os.path.join(out, WEIGHTS_FILE), framework="pt") as st:
        assert torch.equal(st.get_tensor("blocks.0.attn.a_quant.clip"), model.blocks[0].attn.a_quant.clip.detach())
        assert torch.equal(st.get_tensor("tokenizer.1.conv.bn.running_var"),
                           model.tokenizer[1].conv.bn.running_var)


def test_predictions_round_trip_int32(tmp_path):
    _, _, out, preds, _ = _export(tmp_path)
    arr = np.load(os.path.join(out, PREDICTIONS_FILE), allow_pickle=False)
    assert arr.dtype == np.int32
    assert arr.shape == (37,)
    assert np.array_equal(arr, preds.numpy())


def test_no_predictions_file_when_none(tmp_path):
    _, _, out, _, _ = _export(tmp_path, predictions=False)
    assert not os.path.exists(os.path.join(out, PREDICTIONS_FILE))
    with open(os.path.join(out, CONFIG_FILE)) as f:
        assert json.load(f)["predictions"] is None


def test_no_leftover_tmp_files_and_overwrite(tmp_path):
    _, _, out, _, _ = _export(tmp_path)
    # exporting again into the same folder replaces the files atomically
    model, cfg = _build("qat", seed=7)
    export_model(model, cfg, out, {"params": 2}, torch.zeros(3, dtype=torch.int64))
    names = sorted(os.listdir(out))
    assert names == sorted([WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE])
    assert glob.glob(os.path.join(out, "*tmp*")) == []
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(load_export(out)(x), model(x))
    assert np.load(os.path.join(out, PREDICTIONS_FILE)).tolist() == [0, 0, 0]


def test_load_export_rejects_wrong_format(tmp_path):
    _, _, out, _, _ = _export(tmp_path)
    path = os.path.join(out, CONFIG_FILE)
    with open(path) as f:
        doc = json.load(f)
    doc["version"] = 99
    with open(path, "w") as f:
        json.dump(doc, f)
    with pytest.raises(ValueError, match="not a csdformer-export"):
        load_export(out)


def test_load_export_rejects_missing_tensor(tmp_path):
    from safetensors.torch import load_file, save_file
    _, _, out, _, _ = _export(tmp_path)
    path = os.path.join(out, WEIGHTS_FILE)
    tensors = load_file(path)
    del tensors["head.quant.clip"]
    save_file(tensors, path)
    with pytest.raises(ValueError, match="head.quant.clip"):
        load_export(out)


def test_exported_clip_gives_the_forward_step(tmp_path):
    model, cfg = _build("qat")
    q = model.blocks[0].attn.o_quant
    with torch.no_grad():
        q.clip.neg_()  # what an optimizer step larger than a tiny clip does
    x = torch.rand(50) * 3 * float(q.clip.detach().abs())
    with torch.no_grad():
        y = q(x)
    out = str(tmp_path / "export")
    export_model(model, cfg, out, {}, None)
    with open(os.path.join(out, CONFIG_FILE)) as f:
        assert json.load(f)["activation_quantizer"]["step"] == "clip / levels"
    with safe_open(os.path.join(out, WEIGHTS_FILE), framework="pt") as st:
        clip = st.get_tensor("blocks.0.attn.o_quant.clip")
    step = clip / q.levels  # the packer's reading of the export
    assert torch.allclose(qcfs_count(x, step, q.levels) * step, y)
