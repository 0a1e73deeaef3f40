"""Command-line tests of the packer ``csdpack`` (Sources/csdpack).

The binary is taken from the environment variable CSDPACK (default: the debug
build in .build/debug/csdpack); the module is skipped when it is missing, and
fails instead when the environment variable CI is set (conftest.missing). The
tests never build it.

A valid export (docs/MODEL_EXPORT.md) is copied into ``tmp_path`` for every
test and mutated there. Every refusal must: exit with a non-zero status (not
die from a signal), say on stderr which tensor or field is at fault, and leave
no new file at all (no partial image, no temporary) anywhere under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import CSDPACK, REPO, missing, needs_csdpack, needs_fashion_mnist, prerequisite

WEIGHTS = "model.safetensors"
CONFIG = "model.json"
METADATA = {"format": "csdformer-export"}


def _find_export() -> str | None:
    for d in (os.path.join(REPO, "Toolchain", "models", "fmnist-tiny"),):
        if os.path.isfile(os.path.join(d, WEIGHTS)) and os.path.isfile(os.path.join(d, CONFIG)):
            return d
    return None


SOURCE_EXPORT = _find_export()

pytestmark = [
    # Skipped only when run by hand without a build (failed when CI is set); `make test` sets CSDPACK, so a
    # missing binary fails there.
    needs_csdpack,
    prerequisite(SOURCE_EXPORT is not None,
                 "no export to pack: Toolchain/models/fmnist-tiny does not hold "
                 "model.safetensors + model.json (run `python -m csdformer.train`)"),
]

TIMEOUT = 60  # seconds for an ordinary csdpack call (a conversion takes ~0.1 s)
FAST_TIMEOUT = 20  # the absurd-dimension case must fail fast

HEADER_KEYS = {"format_version", "image_bytes", "tensor_bytes", "arena_bytes", "time_steps", "levels", "delay",
               "ops", "valid", "crc_ok"}


# ---------------------------------------------------------------------------------------------------------------
# helpers


class Export:
    """A private copy of the export under tmp_path/export, and an empty output folder tmp_path/out."""

    def __init__(self, root):
        self.root = str(root)
        self.dir = os.path.join(self.root, "export")
        os.makedirs(self.dir)
        for name in (WEIGHTS, CONFIG):
            shutil.copyfile(os.path.join(SOURCE_EXPORT, name), os.path.join(self.dir, name))
        self.out = os.path.join(self.root, "out")
        os.makedirs(self.out)
        self.weights = os.path.join(self.dir, WEIGHTS)
        self.config = os.path.join(self.dir, CONFIG)
        self.image = os.path.join(self.out, "model.csd")

    # --- model.json
    def load_config(self) -> dict:
        with open(self.config) as f:
            return json.load(f)

    def save_config(self, cfg: dict) -> None:
        with open(self.config, "w") as f:
            json.dump(cfg, f)

    # --- safetensors through the library
    def load_tensors(self) -> dict[str, np.ndarray]:
        return load_file(self.weights)

    def save_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        save_file(tensors, self.weights, metadata=METADATA)

    # --- safetensors as raw bytes
    def read_raw(self) -> tuple[dict, bytes]:
        with open(self.weights, "rb") as f:
            blob = f.read()
        (n,) = struct.unpack("<Q", blob[:8])
        return json.loads(blob[8:8 + n]), blob[8 + n:]

    def write_raw(self, header: dict, payload: bytes) -> None:
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(self.weights, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + payload)

    def snapshot(self) -> dict[str, bytes]:
        """Every file under tmp_path (hidden ones too) with its content."""
        files = {}
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, self.root)] = f.read()
        return files


def run_csdpack(*args, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([CSDPACK, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def convert(exp: Export, *extra, weights=None, config=None, output=None, timeout=TIMEOUT):
    return run_csdpack("convert", weights or exp.weights, "--config", config or exp.config,
                       "-o", output or exp.image, *extra, timeout=timeout)


def inspect_json(path) -> tuple[subprocess.CompletedProcess, dict]:
    r = run_csdpack("inspect", path, "--json")
    return r, json.loads(r.stdout)


def describe(r: subprocess.CompletedProcess) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-2000:]}"


def assert_refused(exp: Export, before: dict[str, bytes], r: subprocess.CompletedProcess, *needles: str,
                   any_of: tuple[str, ...] = ()) -> None:
    """convert failed cleanly: status > 0, stderr names every needle (and one of any_of), tmp_path unchanged."""
    assert r.returncode != 0, f"convert accepted bad input\n{describe(r)}"
    assert r.returncode > 0, f"convert died from signal {-r.returncode} instead of refusing\n{describe(r)}"
    assert r.stderr.strip(), f"convert refused without a message on stderr\n{describe(r)}"
    # pytest names tmp_path after the test (test_levels_..., test_config_float_phase...): match the
    # needles against stderr with that folder blanked out, so a path alone never names the field
    err = r.stderr.replace(exp.root, "<tmp>")
    for needle in needles:
        assert needle in err, f"stderr does not name {needle!r}\n{describe(r)}"
    if any_of:
        assert any(n in err for n in any_of), f"stderr names none of {sorted(any_of)}\n{describe(r)}"
    after = exp.snapshot()
    new = sorted(set(after) - set(before))
    assert not new, f"convert left files behind after refusing: {new}\n{describe(r)}"
    changed = sorted(p for p in before if after.get(p) != before[p])
    assert not changed, f"convert modified files while refusing: {changed}\n{describe(r)}"


@pytest.fixture
def exp(tmp_path) -> Export:
    return Export(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# refusals: the safetensors file


def test_missing_tensor(exp):
    t = exp.load_tensors()
    del t["blocks.0.attn.q.weight"]
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "blocks.0.attn.q.weight")


def test_extra_tensor(exp):
    t = exp.load_tensors()
    t["bogus.weight"] = np.ones((4, 4), dtype=np.float32)
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "bogus.weight")


def test_misshapen_tensor(exp):
    t = exp.load_tensors()
    n, d = t["pos_embed"].shape
    t["pos_embed"] = np.zeros((n + 1, d), dtype=np.float32)
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "pos_embed")


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_wrong_dtype(exp, dtype):
    t = exp.load_tensors()
    t["blocks.0.mlp.fc1.weight"] = t["blocks.0.mlp.fc1.weight"].astype(dtype)
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "blocks.0.mlp.fc1.weight")


def test_nan_in_weight(exp):
    t = exp.load_tensors()
    w = t["blocks.1.attn.v.weight"].copy()
    w[3, 5] = np.nan
    t["blocks.1.attn.v.weight"] = w
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "blocks.1.attn.v.weight")


def test_inf_in_bn_variance(exp):
    t = exp.load_tensors()
    v = t["tokenizer.1.conv.bn.running_var"].copy()
    v[0] = np.inf
    t["tokenizer.1.conv.bn.running_var"] = v
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "tokenizer.1.conv.bn.running_var")


def test_zero_quantizer_clip(exp):
    t = exp.load_tensors()
    t["blocks.0.attn.a_quant.clip"] = np.zeros_like(t["blocks.0.attn.a_quant.clip"])
    exp.save_tensors(t)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), "blocks.0.attn.a_quant.clip")


def test_truncated_safetensors(exp):
    header, payload = exp.read_raw()
    with open(exp.weights, "rb") as f:
        blob = f.read()
    data_start = len(blob) - len(payload)
    cut = len(payload) // 2
    with open(exp.weights, "wb") as f:
        f.write(blob[:data_start + cut])
    # the tensors whose data no longer fits in the file
    lost = tuple(k for k, v in header.items() if k != "__metadata__" and v["data_offsets"][1] > cut)
    assert lost
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), WEIGHTS, any_of=lost)


def test_header_length_larger_than_file(exp):
    with open(exp.weights, "rb") as f:
        blob = bytearray(f.read())
    blob[:8] = struct.pack("<Q", len(blob) + 1000)
    with open(exp.weights, "wb") as f:
        f.write(blob)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), WEIGHTS, "header")


def test_huge_header_length(exp):
    """A header length near 2**64 must not overflow or allocate."""
    with open(exp.weights, "rb") as f:
        blob = bytearray(f.read())
    blob[:8] = b"\xf0\xff\xff\xff\xff\xff\xff\xff"
    with open(exp.weights, "wb") as f:
        f.write(blob)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, timeout=FAST_TIMEOUT), WEIGHTS, "header")


def test_header_not_json(exp):
    with open(exp.weights, "rb") as f:
        blob = bytearray(f.read())
    (n,) = struct.unpack("<Q", blob[:8])
    blob[8:8 + n] = (b"this is not json {" + b"#" * n)[:n]
    with open(exp.weights, "wb") as f:
        f.write(blob)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), WEIGHTS, "header", any_of=("JSON", "json"))


def test_absurd_dimension_fails_fast(exp):
    header, payload = exp.read_raw()
    header["pos_embed"]["shape"] = [100_000_000, 100_000_000]
    exp.write_raw(header, payload)
    before = exp.snapshot()
    r = convert(exp, timeout=FAST_TIMEOUT)  # subprocess.TimeoutExpired fails the test
    assert_refused(exp, before, r, "pos_embed")


def test_absurd_element_count_fails_fast(exp):
    """Every dimension small, the product huge: still no huge allocation."""
    header, payload = exp.read_raw()
    header["pos_embed"]["shape"] = [10_000, 10_000, 10_000, 10_000]
    exp.write_raw(header, payload)
    before = exp.snapshot()
    r = convert(exp, timeout=FAST_TIMEOUT)
    assert_refused(exp, before, r, "pos_embed")


def test_missing_model_file(exp):
    missing = os.path.join(exp.dir, "no-such-model.safetensors")
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, weights=missing), "no-such-model.safetensors",
                   "cannot read the file: No such file or directory")


def test_missing_config_file(exp):
    missing = os.path.join(exp.dir, "no-such-model.json")
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, config=missing), "no-such-model.json",
                   "cannot read the file: No such file or directory")


def test_config_is_a_directory(exp):
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, config=exp.dir), "cannot read the file: it is a directory")


def test_unwritable_output_names_the_reason(exp):
    before = exp.snapshot()
    out = os.path.join(exp.dir, "no-such-folder", "model.csd")
    assert_refused(exp, before, convert(exp, output=out), "no-such-folder/model.csd",
                   "cannot write: No such file or directory")


# ---------------------------------------------------------------------------------------------------------------
# refusals: model.json


def test_config_not_json(exp):
    with open(exp.config, "w") as f:
        f.write('{"format": "csdformer-export",\n "version": 1, oops}')
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), CONFIG, "not valid JSON at line 2, column 16")  # the "o" of oops


def _setting(key, value, *expected):
    """An edit of model.json that sets a top-level field; returns what the refusal must say."""
    def edit(cfg):
        cfg[key] = value
        return list(expected)
    return edit


def _unknown_graph_kind(cfg):
    index = next(i for i, layer in enumerate(cfg["graph"]) if layer["kind"] == "mlp")
    cfg["graph"][index]["kind"] = "conv5x5_magic"
    return ["conv5x5_magic", f"graph[{index}]"]


def _tensor_shape_differs_from_the_file(cfg):
    cfg["tensors"]["pos_embed"]["shape"][0] += 1
    return ["tensors.pos_embed.shape", "but"]


def _tensor_list_misses_a_file_tensor(cfg):
    del cfg["tensors"]["head.bias"]
    return ["head.bias", "not listed"]


def _in_shape_that_does_not_chain(cfg):
    cfg["graph"][1]["in_shape"][1] += 2  # the channel count still matches; the size does not
    return ["graph[1]", "in_shape"]


@pytest.mark.parametrize("edit", [
    _setting("time_steps", "seven", "time_steps", 'found the string "seven"'),
    _setting("version", "1", "version: expected an integer", 'found the string "1"'),
    _setting("phase", "float", "phase"),
    _unknown_graph_kind,
    _tensor_shape_differs_from_the_file,
    _tensor_list_misses_a_file_tensor,
    _in_shape_that_does_not_chain,
], ids=["field-of-wrong-type", "integer-given-as-string", "float-phase", "unknown-graph-kind",
        "tensor-shape-differs-from-the-file", "tensor-list-misses-a-file-tensor", "in-shape-that-does-not-chain"])
def test_config_edit_is_refused(exp, edit):
    cfg = exp.load_config()
    expected = edit(cfg)
    exp.save_config(cfg)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), *expected)


# ---------------------------------------------------------------------------------------------------------------
# refusals: options


def test_time_steps_above_16(exp):
    before = exp.snapshot()
    r = convert(exp, "--time-steps", 17)
    assert_refused(exp, before, r, "17", any_of=("time-steps", "time_steps"))


def test_levels_above_time_steps(exp):
    before = exp.snapshot()
    r = convert(exp, "--time-steps", 4, "--levels", 5)
    assert_refused(exp, before, r, "levels")


def test_delay_above_time_steps(exp):
    t = exp.load_config()["time_steps"]
    before = exp.snapshot()
    r = convert(exp, "--delay", t + 1)
    assert_refused(exp, before, r, "delay")


def test_bad_symbol(exp):
    out = exp.out
    before = exp.snapshot()
    r = convert(exp, "--c-source", os.path.join(out, "m.c"), "--c-header", os.path.join(out, "m.h"),
                "--symbol", "1bad")
    assert_refused(exp, before, r, "1bad")


def test_c_header_path_unwritable_leaves_no_output(exp):
    """The last of the three files cannot be put in place: none of them may appear."""
    blocker = os.path.join(exp.out, "m.h")
    os.makedirs(os.path.join(blocker, "occupied"))  # a non-empty directory where the header should go
    before = exp.snapshot()
    r = convert(exp, "--c-source", os.path.join(exp.out, "m.c"), "--c-header", blocker, "--symbol", "m")
    assert_refused(exp, before, r, "m.h")


def test_output_folder_missing(exp):
    target = os.path.join(exp.out, "no-such-dir", "model.csd")
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, output=target), "model.csd")


def test_failed_reconvert_keeps_old_files(exp):
    c, h = os.path.join(exp.out, "m.c"), os.path.join(exp.out, "m.h")
    r = convert(exp, "--c-source", c, "--c-header", h, "--symbol", "m")
    assert r.returncode == 0, describe(r)
    t = exp.load_tensors()
    w = t["head.weight"].copy()
    w[0, 0] = np.nan
    t["head.weight"] = w
    exp.save_tensors(t)
    before = exp.snapshot()
    assert {os.path.join("out", n) for n in ("model.csd", "m.c", "m.h")} <= set(before)
    r = convert(exp, "--c-source", c, "--c-header", h, "--symbol", "m")
    assert_refused(exp, before, r, "head.weight")
    r2, report = inspect_json(exp.image)
    assert r2.returncode == 0 and report["valid"], describe(r2)


def test_failed_reconvert_bad_option_keeps_old_image(exp):
    r = convert(exp)
    assert r.returncode == 0, describe(r)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, "--time-steps", 17), "17")


# ---------------------------------------------------------------------------------------------------------------
# the happy path


def _header_defines(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define\s+(\w+)\s+(\d+)[uU]?\b", text)}


def test_convert_writes_image_c_source_and_header(exp):
    c, h = os.path.join(exp.out, "fmnist_tiny.c"), os.path.join(exp.out, "fmnist_tiny.h")
    r = convert(exp, "--time-steps", 7, "--levels", 7, "--delay", 3,
                "--c-source", c, "--c-header", h, "--symbol", "fmnist_tiny")
    assert r.returncode == 0, describe(r)
    assert sorted(os.listdir(exp.out)) == ["fmnist_tiny.c", "fmnist_tiny.h", "model.csd"]
    size = os.path.getsize(exp.image)

    r, report = inspect_json(exp.image)
    assert r.returncode == 0, describe(r)

    with open(h) as f:
        header = f.read()
    defines = _header_defines(header)
    assert defines.get("fmnist_tiny_size") == size, header
    assert defines.get("fmnist_tiny_ARENA_BYTES_FUSED") == report["arena_bytes"]["fused"], header
    assert defines.get("fmnist_tiny_ARENA_BYTES_SPIKING") == report["arena_bytes"]["spiking"], header
    assert re.search(r"\bfmnist_tiny\s*\[", header), "the header does not declare the array"
    c_, h_, w_ = report["input_shape"]
    assert defines.get("fmnist_tiny_INPUT_CHANNELS") == c_ and defines.get("fmnist_tiny_INPUT_HEIGHT") == h_, header
    assert defines.get("fmnist_tiny_INPUT_WIDTH") == w_, header
    assert defines.get("fmnist_tiny_INPUT_BYTES") == c_ * h_ * w_, header
    assert defines.get("fmnist_tiny_CLASSES") == report["classes"], header
    assert re.search(r'#include\s+"csd\.h"', header), "the header does not include csd.h"

    with open(c) as f:
        source = f.read()
    assert "generated by csdpack" in source
    decl = re.search(r"CSD_ALIGN16\s+const\s+uint8_t\s+fmnist_tiny\s*\[\s*(\d+)\s*\]", source)
    assert decl, "the C source does not declare `CSD_ALIGN16 const uint8_t fmnist_tiny[SIZE]`"
    assert re.search(r'__attribute__\s*\(\(\s*section\s*\(\s*"[^"]+"\s*\)\s*\)\)', source[:decl.start()]), source[:400]
    assert int(decl.group(1)) == size
    # the array's bytes are the image's bytes
    body = source[decl.end():]
    values = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})\b", body))
    with open(exp.image, "rb") as f:
        assert values == f.read()


@pytest.mark.parametrize("compiler,std", [("gcc", "c99"), ("gcc", "c11"), ("clang", "c99"), ("clang", "c11")])
def test_c_source_compiles_aligned(exp, tmp_path, compiler, std):
    cc = shutil.which(compiler)
    if cc is None:
        missing(f"no C compiler `{compiler}` on PATH")  # a skip, or a failure when CI is set
    c, h = os.path.join(exp.out, "fmnist_tiny.c"), os.path.join(exp.out, "fmnist_tiny.h")
    r = convert(exp, "--c-source", c, "--c-header", h, "--symbol", "fmnist_tiny")
    assert r.returncode == 0, describe(r)
    obj = tmp_path / "fmnist_tiny.o"
    cr = subprocess.run([cc, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", os.path.join(REPO, "Include"),
                         "-c", c, "-o", str(obj)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert cr.returncode == 0, cr.stderr
    assert obj.stat().st_size > os.path.getsize(exp.image)
    # the image's section is 16-byte aligned (objdump -h: "2**4")
    sections = subprocess.run(["objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in sections.splitlines() if ".rodata.csd_model" in ln), None)
    assert line is not None, sections
    assert line.split()[-1] == "2**4", line


@pytest.mark.parametrize("options,expected", [
    ((), None),  # the export's T and L, D = T
    (("--time-steps", 7, "--levels", 7, "--delay", 3), (7, 7, 3)),
    (("--time-steps", 16, "--levels", 7, "--delay", 16, "--force"), (16, 7, 16)),
    (("--time-steps", 7, "--levels", 7, "--delay", 0), (7, 7, 0)),
], ids=["defaults", "T7-L7-D3", "T16-D16", "D0"])
def test_inspect_json_report(exp, options, expected):
    if expected is None:
        cfg = exp.load_config()
        expected = (cfg["time_steps"], cfg["levels"], cfg["time_steps"])
    r = convert(exp, *options)
    assert r.returncode == 0, describe(r)
    assert os.listdir(exp.out) == ["model.csd"]
    r, report = inspect_json(exp.image)
    assert r.returncode == 0, describe(r)
    missing = HEADER_KEYS - set(report)
    assert not missing, f"inspect --json lacks {sorted(missing)}"
    assert set(report["arena_bytes"]) >= {"fused", "spiking"}
    assert report["valid"] is True
    assert report["crc_ok"] is True
    assert report["format_version"] == 5
    size = os.path.getsize(exp.image)
    assert report["image_bytes"] == size
    assert 0 < report["tensor_bytes"] and report["image_bytes"] <= 1.02 * report["tensor_bytes"]
    assert (report["time_steps"], report["levels"], report["delay"]) == expected
    assert isinstance(report["ops"], list) and report["ops"]
    for mode in ("fused", "spiking"):
        assert report["arena_bytes"][mode] > 0 and report["arena_bytes"][mode] % 16 == 0
    assert report["arena_bytes"]["spiking"] >= report["arena_bytes"]["fused"]
    # the text report works too
    rt = run_csdpack("inspect", exp.image)
    assert rt.returncode == 0 and rt.stdout.strip(), describe(rt)


def test_convert_is_deterministic(exp):
    r = convert(exp)
    assert r.returncode == 0, describe(r)
    with open(exp.image, "rb") as f:
        first = f.read()
    second = os.path.join(exp.out, "again.csd")
    r = convert(exp, output=second)
    assert r.returncode == 0, describe(r)
    with open(second, "rb") as f:
        assert f.read() == first


# ---------------------------------------------------------------------------------------------------------------
# inspect on bad images


def test_inspect_corrupted_image(exp):
    r = convert(exp)
    assert r.returncode == 0, describe(r)
    with open(exp.image, "rb") as f:
        blob = bytearray(f.read())
    blob[len(blob) // 2] ^= 0xFF
    with open(exp.image, "wb") as f:
        f.write(blob)
    r, report = inspect_json(exp.image)
    assert r.returncode == 2, describe(r)
    assert report["crc_ok"] is False
    assert report["valid"] is False


def test_inspect_tiny_file(exp):
    path = os.path.join(exp.out, "tiny.csd")
    with open(path, "wb") as f:
        f.write(b"CSDF\x01\x00\x01\x00\x80\x00")
    for args in ((), ("--json",)):
        r = run_csdpack("inspect", path, *args)
        assert r.returncode > 0, describe(r)


def test_inspect_missing_file(exp):
    r = run_csdpack("inspect", os.path.join(exp.out, "absent.csd"))
    assert r.returncode > 0, describe(r)
    assert "absent.csd" in r.stderr, describe(r)


# ---------------------------------------------------------------------------------------------------------------
# inspect and verify: what they say about bad input


def test_inspect_of_a_non_image_prints_only_the_status(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a model, just some text that is longer than nothing\n" * 4)
    r = run_csdpack("inspect", str(path))
    assert r.returncode == 2, describe(r)
    assert r.stdout.splitlines() == ["status:          INVALID (-3: bad magic (not a .csd image))"], r.stdout
    r = run_csdpack("inspect", "--json", str(path))
    assert r.returncode == 2, describe(r)
    assert json.loads(r.stdout) == {"status": -3, "status_message": "bad magic (not a .csd image)", "valid": False}


GOLDEN_IMAGE = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny", "model.csd")


@needs_fashion_mnist
def test_verify_checks_the_delay_before_running():
    r = run_csdpack("verify", GOLDEN_IMAGE, "--limit", "3", "--delay", "9")
    assert r.returncode == 1, describe(r)
    assert "--delay 9: the image has T = 7; use 0...7" in r.stderr, describe(r)
    assert "images" not in r.stderr and not r.stdout, "verify ran a mode before refusing the delay"


@needs_fashion_mnist
def test_verify_progress_without_a_terminal_is_whole_lines():
    r = run_csdpack("verify", GOLDEN_IMAGE, "--limit", "3", "--mode", "both")  # stderr is a pipe here
    assert r.returncode == 0, describe(r)
    assert "\r" not in r.stderr
    assert r.stderr.splitlines() == ["fused: 3/3 images", "spiking D=7: 3/3 images"], r.stderr


@needs_fashion_mnist
def test_verify_threads_give_the_same_results(tmp_path):
    """Any --threads gives the same logits, per-op spikes and report (each thread runs its own images)."""
    outputs = {}
    for threads in (1, 3):
        dump = tmp_path / f"t{threads}"
        dump.mkdir()
        r = run_csdpack("verify", GOLDEN_IMAGE, "--limit", "13", "--mode", "both", "--delay", "3", "--threads", threads,
                        "--dump", dump, "--json")
        assert r.returncode == 0, describe(r)
        files = {p.name: p.read_bytes() for p in sorted(dump.iterdir())}
        assert sorted(files) == ["fused.logits.i32", "fused.spikes.u32", "spiking_D3.logits.i32", "spiking_D3.spikes.u32"]
        outputs[threads] = (files, json.loads(r.stdout))
    assert outputs[1] == outputs[3]
    r = run_csdpack("verify", GOLDEN_IMAGE, "--limit", "3", "--threads", "0")
    assert r.returncode != 0 and "--threads 0: need at least 1" in r.stderr, describe(r)


@pytest.mark.parametrize("flag,value,name", [("--levels", 3, "L"), ("--time-steps", 9, "T")])
def test_other_than_trained_t_or_l_needs_force(exp, flag, value, name):
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp, flag, value), f"{flag} {value}: the model was trained with {name} = 7",
                   "--force")
    r = convert(exp, flag, value, "--force")
    assert r.returncode == 0, describe(r)
    assert f"warning: {flag} {value}: the model was trained with {name} = 7" in r.stderr, describe(r)
    _, report = inspect_json(exp.image)
    assert report["levels" if name == "L" else "time_steps"] == value


# ---------------------------------------------------------------------------------------------------------------
# refusals: model.json against the safetensors file and against itself


@pytest.mark.parametrize("key,delta", [("heads", 1), ("num_classes", 1), ("depth", 1), ("in_channels", 1)])
def test_config_model_section_contradicts_the_graph(exp, key, delta):
    cfg = exp.load_config()
    cfg["model"][key] += delta
    exp.save_config(cfg)
    before = exp.snapshot()
    assert_refused(exp, before, convert(exp), f"model.{key}", "but")
