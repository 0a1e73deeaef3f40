"""Training smoke tests (csdformer.train): one-batch runs, resume, config errors, two-process DDP on CPU."""

from __future__ import annotations

import os
import shlex
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_LIMIT_TEST as LIMIT_TEST, TINY_LIMIT_TRAIN as LIMIT_TRAIN
from conftest import needs_fashion_mnist, read_metrics as _metrics, tiny_config_dict, tiny_run_args as _args
from conftest import torchrun, train_once, write_config
from csdformer import data as datasets
from csdformer import train
from csdformer.export import CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE, WEIGHTS_FILE, load_export



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny float + QAT run (one step per epoch), shared by the checks below."""
    return train_once(tmp_path_factory, "train", train.main)


@needs_fashion_mnist
def test_training_exports_files(trained):
    out = trained["out"]
    for name in (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE, train.CHECKPOINT):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not [n for n in os.listdir(out) if "tmp" in n]


@needs_fashion_mnist
def test_training_metrics(trained):
    m = _metrics(trained["out"])
    for key in ("params", "float_test_accuracy", "fake_quant_test_accuracy", "time_steps", "levels", "epochs",
                "train_seconds", "command"):
        assert key in m, key
    model = load_export(trained["out"])
    assert m["params"] == sum(p.numel() for p in model.parameters())
    assert 0.0 <= m["float_test_accuracy"] <= 1.0
    assert 0.0 <= m["fake_quant_test_accuracy"] <= 1.0
    assert m["time_steps"] == 4 and m["levels"] == 3
    assert m["epochs"] == {"float": 1, "qat": 1}
    assert m["train_seconds"] >= 0
    assert m["world_size"] == 1
    assert m["test_images"] == LIMIT_TEST
    assert m["command"].startswith("python -m csdformer.train ")
    assert "--max-steps 1" in m["command"]
    assert [(h["epoch"], h["phase"]) for h in m["history"]] == [(1, "float"), (2, "qat")]
    assert m["history"][0]["test_accuracy"] == m["float_test_accuracy"]


@needs_fashion_mnist
def test_exported_predictions_match_loaded_model(trained):
    out = trained["out"]
    model = load_export(out)
    assert model.phase == "qat"
    test = datasets.load("fashion-mnist", "test").subset(LIMIT_TEST)
    with torch.no_grad():
        preds = model(datasets.to_model_input(test.images)).argmax(1)
    stored = np.load(os.path.join(out, PREDICTIONS_FILE))
    assert stored.dtype == np.int32 and stored.shape == (LIMIT_TEST,)
    assert np.array_equal(stored, preds.numpy())
    # the reported fake-quant accuracy is the accuracy of those predictions
    acc = float((preds == test.labels).float().mean())
    assert _metrics(out)["fake_quant_test_accuracy"] == pytest.approx(acc)


@needs_fashion_mnist
def test_qat_changed_the_clips_from_their_initial_value(trained):
    # calibration runs before QAT: the quantizer clips are no longer the constructor's 1.0
    tensors = load_file(os.path.join(trained["out"], WEIGHTS_FILE))
    clips = [float(v) for k, v in tensors.items() if k.endswith(".clip")]
    assert len(clips) == 11
    # (the forward pass uses |clip|; a tiny clip can change sign in one Adam step, see test_export)
    assert all(abs(c) > 0 for c in clips)
    assert sum(abs(abs(c) - 1.0) > 1e-3 for c in clips) >= 9


@needs_fashion_mnist
def test_rerun_resumes_without_training(trained, tmp_path, capsys, clean_dist_env):
    out = str(tmp_path / "out")
    shutil.copytree(trained["out"], out)
    before = torch.load(os.path.join(out, train.CHECKPOINT), weights_only=False)
    weights_before = load_file(os.path.join(out, WEIGHTS_FILE))
    args = list(trained["args"])
    args[args.index("--out") + 1] = out
    capsys.readouterr()
    assert train.main(args) == 0
    log = capsys.readouterr().out
    assert "resuming from" in log and "after epoch 2/2" in log
    assert "[float] loss" not in log and "[qat] loss" not in log  # no epoch ran
    after = torch.load(os.path.join(out, train.CHECKPOINT), weights_only=False)
    assert after["state"]["epoch"] == before["state"]["epoch"] == 2
    assert len(after["state"]["history"]) == 2
    weights_after = load_file(os.path.join(out, WEIGHTS_FILE))
    assert weights_after.keys() == weights_before.keys()
    assert all(torch.equal(weights_after[k], weights_before[k]) for k in weights_before)
    assert len(_metrics(out)["history"]) == 2


@needs_fashion_mnist
def test_resume_continues_with_the_next_phase(tmp_path, capsys, clean_dist_env):
    config = write_config(tmp_path)
    out = str(tmp_path / "out")
    assert train.main(_args(config, out, float_epochs=1, qat_epochs=0)) == 0
    m = _metrics(out)
    assert m["fake_quant_test_accuracy"] is None  # float-only export
    assert load_export(out).phase == "float"
    capsys.readouterr()
    assert train.main(_args(config, out, float_epochs=1, qat_epochs=1)) == 0
    log = capsys.readouterr().out
    assert "after epoch 1/2" in log
    assert "epoch 1/2 [float] loss" not in log and "epoch 2/2 [qat] loss" in log
    m = _metrics(out)
    assert [(h["epoch"], h["phase"]) for h in m["history"]] == [(1, "float"), (2, "qat")]
    assert m["fake_quant_test_accuracy"] is not None
    assert load_export(out).phase == "qat"


@needs_fashion_mnist
def test_restart_ignores_checkpoint(trained, tmp_path, capsys, clean_dist_env):
    out = str(tmp_path / "out")
    shutil.copytree(trained["out"], out)
    args = list(trained["args"])
    args[args.index("--out") + 1] = out
    capsys.readouterr()
    assert train.main(args + ["--restart"]) == 0
    log = capsys.readouterr().out
    assert "resuming" not in log
    assert "epoch 1/2 [float] loss" in log and "epoch 2/2 [qat] loss" in log


# ----------------------------------------------------------------------------- the API (docs/PYTHON_API.md)

@needs_fashion_mnist
def test_train_model_runs_the_command_line_training(tmp_path, capsys, clean_dist_env):
    import csdformer
    config = write_config(tmp_path)
    out = str(tmp_path / "out")
    metrics = csdformer.train_model(config, out, float_epochs=1, qat_epochs=0, limit_train=LIMIT_TRAIN,
                                    limit_test=LIMIT_TEST, max_steps=1, progress=False)
    assert metrics == _metrics(out)
    assert metrics["epochs"] == {"float": 1, "qat": 0} and metrics["test_images"] == LIMIT_TEST
    # the equivalent command, recorded: it resumes this run
    assert metrics["command"] == (f"python -m csdformer.train --config {config} --out {out} --float-epochs 1 "
                                  f"--qat-epochs 0 --limit-train {LIMIT_TRAIN} --limit-test {LIMIT_TEST} "
                                  f"--max-steps 1 --no-progress")
    capsys.readouterr()
    assert train.main(shlex.split(metrics["command"])[3:]) == 0
    assert "resuming from" in capsys.readouterr().out


def test_train_model_raises_value_error_for_a_bad_config(tmp_path, clean_dist_env):
    import csdformer
    cfg = tiny_config_dict()
    cfg["model"]["heads"] = 3
    config = write_config(tmp_path, cfg)
    with pytest.raises(ValueError, match="divisible"):
        csdformer.train_model(config, str(tmp_path / "out"))


# ----------------------------------------------------------------------------- configuration errors

@pytest.mark.parametrize("section, key", [(None, "learning_rate"), ("train", "epochs_float"), ("model", "dropout")])
def test_unknown_config_key_exits_naming_it(tmp_path, section, key, clean_dist_env):
    cfg = tiny_config_dict()
    if section is None:
        cfg[key] = 1
    else:
        cfg[section][key] = 1
    config = write_config(tmp_path, cfg)
    with pytest.raises(SystemExit) as e:
        train.main(_args(config, str(tmp_path / "out")))
    assert key in str(e.value.code)
    assert not os.path.exists(tmp_path / "out")  # nothing was created


def test_invalid_model_config_exits(tmp_path, clean_dist_env):
    cfg = tiny_config_dict()
    cfg["model"]["heads"] = 3  # 8 is not divisible by 3
    config = write_config(tmp_path, cfg)
    with pytest.raises(SystemExit) as e:
        train.main(_args(config, str(tmp_path / "out")))
    assert "divisible" in str(e.value.code) and config in str(e.value.code)


def test_unreadable_config_exits(tmp_path, clean_dist_env):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        train.main(_args(str(bad), str(tmp_path / "out")))
    assert str(bad) in str(e.value.code)


def test_missing_dataset_exits(tmp_path, clean_dist_env):
    cfg = tiny_config_dict()
    cfg["dataset"] = "mnist"
    config = write_config(tmp_path, cfg)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        train.main(_args(config, str(tmp_path / "out"), extra=["--data-dir", str(empty)]))
    assert str(empty) in str(e.value.code)


# ----------------------------------------------------------------------------- helpers

def test_cosine_schedule():
    f = train.cosine_lambda(total_steps=10, warmup_steps=2)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0)
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5)  # halfway through the cosine
    assert f(10) == pytest.approx(0.0, abs=1e-12) and f(50) == pytest.approx(0.0, abs=1e-12)


def test_param_groups_decay_only_conv_and_linear_weights(tiny_model_config):
    from csdformer.model import CSDformer
    model = CSDformer(tiny_model_config)
    for _, q in model.quantizers():
        q.clip.requires_grad_(False)  # the float phase: clips are not trained
    decay, no_decay, *clip_groups = train.param_groups(model, 0.05, 1e-3)
    assert clip_groups == []
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    expected = sorted([f"{n}.weight" for n, _ in model.foldables()] + ["head.weight"])
    assert decayed == expected
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters())) - len(model.quantizers())


def test_param_groups_scale_each_clip_learning_rate_by_its_magnitude(tiny_model_config):
    from csdformer.model import CSDformer
    model = CSDformer(tiny_model_config)
    quantizers = model.quantizers()
    for i, (_, q) in enumerate(quantizers):
        q.clip.data.fill_(10.0 ** -(i % 4))
    decay, no_decay, *clip_groups = train.param_groups(model, 0.05, 1e-3)
    assert len(clip_groups) == len(quantizers)
    by_param = {id(g["params"][0]): g for g in clip_groups}
    for i, (_, q) in enumerate(quantizers):
        g = by_param[id(q.clip)]
        assert g["weight_decay"] == 0.0
        assert g["lr"] == pytest.approx(1e-3 * 10.0 ** -(i % 4))
    assert all(id(p) not in by_param for p in decay["params"] + no_decay["params"])


# ----------------------------------------------------------------------------- two-process DDP on CPU

@needs_fashion_mnist
def test_two_process_ddp(tmp_path):
    config = write_config(tmp_path)
    out = str(tmp_path / "out")
    proc = torchrun("csdformer.train", _args(config, out), tmp_path)
    m = _metrics(out)
    assert m["world_size"] == 2
    assert "world size 2" in proc.stdout
    assert [(h["epoch"], h["phase"]) for h in m["history"]] == [(1, "float"), (2, "qat")]
    model = load_export(out)
    assert model.phase == "qat"
    preds = np.load(os.path.join(out, PREDICTIONS_FILE))
    test = datasets.load("fashion-mnist", "test").subset(LIMIT_TEST)
    with torch.no_grad():
        assert np.array_equal(preds, model(datasets.to_model_input(test.images)).argmax(1).numpy())
