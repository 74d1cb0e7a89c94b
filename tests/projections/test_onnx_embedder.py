"""The ONNX Runtime embedder: same vectors as PyTorch, exported once into the lake's cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eventlog.errors import InvalidInputError
from projections.embeddings import Embedder, SentenceTransformerEmbedder, default_model_path
from projections.onnx_embedder import OnnxEmbedder, cache_key, model_cache_dir, onnx_model_file

SAMPLE = [
    "Note from customer on Ada Lovelace's order: The parcel arrived soaked and the mug is cracked.",
    "Ada Lovelace was refunded EUR 12.50: damaged in transit.",
    "x",
    "",
    "Ada Lovelace's order shipped to Lyon with DHL, tracking number JD0123. " * 40,  # > 256 tokens
    *(f"Customer {i} asked where order number {i} is; it is {i} days late." for i in range(70)),
]


def test_a_directory_without_a_model_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a directory holding"):
        onnx_model_file(tmp_path / "nope", tmp_path / "cache")


def test_a_model_without_mean_pooling_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m" / "1_Pooling").mkdir(parents=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    with pytest.raises(InvalidInputError, match="mean pooling"):
        onnx_model_file(tmp_path / "m", tmp_path / "cache")


def test_cache_key_follows_the_model_files(tmp_path: Path) -> None:
    model = tmp_path / "my model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "model.safetensors").write_bytes(b"1234")
    first = cache_key(model)
    assert first.startswith("my_model-") and first == cache_key(model)
    (model / "model.safetensors").write_bytes(b"12345")
    assert cache_key(model) != first


@pytest.mark.slow
def test_onnx_vectors_match_pytorch_and_the_export_is_cached(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    onnx = OnnxEmbedder(cache_dir=model_cache_dir(lake))
    assert isinstance(onnx, Embedder)
    assert (onnx.name, onnx.dimension) == ("all-MiniLM-L6-v2", 384)
    assert onnx.onnx_file.parent.parent == lake / "models"
    assert onnx.onnx_file.stat().st_size > 10_000_000
    torch_emb = SentenceTransformerEmbedder(device="cpu", batch_size=16)
    a, b = onnx.encode(SAMPLE), torch_emb.encode(SAMPLE)
    assert a.dtype == np.float32 and a.shape == (len(SAMPLE), 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() >= 0.999, cosine.min()
    # a second process finds the export in the cache and never imports torch
    code = (
        "import sys; from pathlib import Path; from projections.onnx_embedder import OnnxEmbedder;"
        f"e = OnnxEmbedder(cache_dir=Path({str(lake / 'models')!r})); e.encode(['hi']);"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "Loading weights" not in out.stderr
    assert len(list((lake / "models").glob("*/model.onnx"))) == 1


@pytest.mark.slow
def test_pytorch_embedder_prints_no_loading_bar(tmp_path: Path) -> None:
    code = (
        "from projections.embeddings import SentenceTransformerEmbedder;"
        "SentenceTransformerEmbedder(device='cpu').encode(['hi'])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "Loading weights" not in out.stderr
    assert default_model_path()


@pytest.mark.slow
def test_cli_search_loads_onnx_not_torch(tmp_path: Path) -> None:
    from eventlog.generate import generate
    from eventlog.orders.log import open_order_log

    lake = tmp_path / "lake"
    with open_order_log(lake) as log:
        generate(log, orders=6, days=5, seed=3)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "LANCE_LOG": "error"}
    cli = [sys.executable, "-m", "pipelines.cli", "--lake", str(lake)]
    embed = subprocess.run([*cli, "embed"], capture_output=True, text=True, env=env)
    assert embed.returncode == 0, embed.stderr
    assert "Loading weights" not in embed.stderr
    assert list((lake / "models").glob("*/model.onnx")), "embed on the CPU exports the model"
    code = (
        "import sys; from pipelines.cli import app\n"
        f"sys.argv = ['ledgerlake', '--lake', {str(lake)!r}, 'search', 'parcel', '--json']\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules, file=sys.stderr)\n"
    )
    from tests.eventlog.test_integrity import snapshot

    before = snapshot(lake)
    search = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert search.returncode == 0, search.stderr
    assert snapshot(lake) == before  # a reader writes nothing into the lake
    assert json.loads(search.stdout)[0]["text"]
    assert search.stderr.strip().splitlines()[-1] == "False True"


def test_search_on_a_lake_without_the_export_writes_nothing_into_it(tmp_path: Path) -> None:
    """A lake embedded with PyTorch has no ONNX export: search makes one outside the lake."""
    from projections.onnx_embedder import model_cache_dir, reader_cache_dir

    lake = tmp_path / "lake"
    lake.mkdir()
    outside = reader_cache_dir(lake, None)
    assert outside != model_cache_dir(lake) and lake not in outside.parents
