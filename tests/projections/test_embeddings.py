"""Embedders: the hashing stand-in (fast) and the real all-MiniLM-L6-v2 (slow, offline)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eventlog.errors import InvalidInputError
from projections.embeddings import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    embedder_for,
    load_model,
    model_slug,
)


def test_hashing_embedder_is_deterministic_normalized_float32() -> None:
    emb = HashingEmbedder(24)
    assert isinstance(emb, Embedder)
    a = emb.encode(["the parcel arrived soaked", "", "the parcel arrived soaked"])
    assert a.dtype == np.float32 and a.shape == (3, 24)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(
        a,
        HashingEmbedder(24).encode(["the parcel arrived soaked", "", "the parcel arrived soaked"]),
    )
    assert (emb.calls, emb.texts, emb.name) == (1, 3, "hashing-24")
    with pytest.raises(InvalidInputError):
        HashingEmbedder(1)


def test_model_slug_is_table_safe() -> None:
    assert model_slug("all-MiniLM-L6-v2") == "all_minilm_l6_v2"
    assert model_slug("../x y") == "x_y"


def test_embedder_for_recorded_hashing_model() -> None:
    assert embedder_for("hashing-12", 12).dimension == 12


def test_missing_model_path_is_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="not a directory"):
        load_model("/nonexistent/model", "cpu")


@pytest.mark.slow
def test_real_model_loads_offline_and_embeds_meaning() -> None:
    emb = SentenceTransformerEmbedder(device="cpu", batch_size=8)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert (emb.name, emb.dimension) == ("all-MiniLM-L6-v2", 384)
    v = emb.encode(
        ["The parcel arrived soaked.", "A water-damaged package.", "Please gift-wrap the mug."]
    )
    assert v.dtype == np.float32 and v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1
    assert (emb.calls, emb.texts) == (1, 3)
    again = SentenceTransformerEmbedder(device="cpu")
    assert again.model is emb.model  # loaded once per process
    assert emb.encode([]).shape == (0, 384)
