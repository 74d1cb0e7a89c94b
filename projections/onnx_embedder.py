"""Sentence embeddings with ONNX Runtime on the CPU: no torch import on the query path.

The model's transformer is exported once (torch -> ONNX) into the lake's model cache,
``<lake>/models/<model>-<digest>/model.onnx``: a derived directory, safe to delete, rebuilt
on the next use. A model directory that ships ``onnx/model.onnx`` is used as it is.
Tokenizing (``tokenizers``), mean pooling and normalizing follow the sentence-transformers
configuration of the model directory, so the vectors match the PyTorch ones (tested:
cosine >= 0.999). Importing this module costs about 0.1 s; torch is imported only to export.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventlog.errors import InvalidInputError

ONNX_FILE = "model.onnx"
EXPORT_VERSION = "1"  # bump when the export below changes: it changes the cache key
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_SESSIONS: dict[tuple[str, str], tuple[Any, Any, int, Path]] = {}
_SESSIONS_LOCK = threading.Lock()


def model_cache_dir(lake: Path) -> Path:
    """``<lake>/models``: exported models, derived and rebuildable."""
    return Path(lake) / "models"


def reader_cache_dir(lake: Path, model_path: str | None) -> Path:
    """Where a reader (search) finds or makes a model's ONNX export without writing the lake.

    The lake's own cache when ``embed`` already exported the model there, else a cache
    outside the lake (the system's temp directory): nothing that reads a lake writes it.
    """
    from projections.embeddings import default_model_path

    inside = model_cache_dir(lake)
    model_dir = Path(model_path or default_model_path())
    try:
        if (inside / cache_key(model_dir) / ONNX_FILE).exists():
            return inside
    except (OSError, ValueError):
        return inside  # a bad model path: let the loader name the problem
    return Path(tempfile.gettempdir()) / "ledgerlake-models"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir() or not (model_dir / "config.json").exists():
        raise InvalidInputError(
            f"model path {model_dir} is not a directory holding a sentence-transformers model"
        )
    pooling = _read_json(model_dir / "1_Pooling" / "config.json") or {}
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        raise InvalidInputError(
            f"model {model_dir} does not use mean pooling; the ONNX embedder supports only that"
        )


def cache_key(model_dir: Path) -> str:
    """``<model name>-<digest>``: changes when the model's config or weight files change."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    digest.update((model_dir / "config.json").read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_dir.name)
    return f"{name}-{digest.hexdigest()[:12]}"


def export_onnx(model_dir: Path, out: Path) -> Path:
    """Export the model's transformer (last hidden state) to ``out``, atomically."""
    import torch
    from transformers import AutoModel

    from projections.embeddings import quiet_transformers

    os.environ["HF_HUB_OFFLINE"] = "1"
    quiet_transformers()
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()

    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {n: {0: "batch", 1: "tokens"} for n in (*INPUTS, "last_hidden_state")}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                (sample, sample, torch.zeros_like(sample)),
                str(tmp),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(out)  # two racing exports write the same model: the last one wins
    finally:
        tmp.unlink(missing_ok=True)
    (out.parent / "source.json").write_text(
        json.dumps({"model_path": str(model_dir), "export_version": EXPORT_VERSION}) + "\n"
    )
    return out


def onnx_model_file(model_dir: Path, cache_dir: Path) -> Path:
    """The ONNX file for a model: shipped with it, cached in the lake, or exported now."""
    _check_model_dir(model_dir)
    shipped = model_dir / "onnx" / ONNX_FILE
    if shipped.exists():
        return shipped
    cached = cache_dir / cache_key(model_dir) / ONNX_FILE
    if cached.exists():
        return cached
    return export_onnx(model_dir, cached)


def _load(onnx_file: Path, model_dir: Path) -> tuple[Any, Any, int, Path]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    # no busy-waiting threads: the server and the pipelines share the cores with others
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    config = _read_json(model_dir / "sentence_bert_config.json") or {}
    max_len = int(config.get("max_seq_length") or 256)
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
    dimension = int(session.get_outputs()[0].shape[-1])
    return session, tokenizer, dimension, onnx_file


class OnnxEmbedder:
    """A sentence-transformers model (mean pooling, normalized) run by ONNX Runtime on the CPU."""

    def __init__(
        self,
        model_path: str | None = None,
        *,
        cache_dir: Path,
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        from projections.embeddings import DEFAULT_MODEL_NAME, default_model_path

        self.model_path = model_path or default_model_path()
        self.device = "cpu"
        self.batch_size = batch_size
        self._name = name or (DEFAULT_MODEL_NAME if model_path is None else Path(model_path).name)
        model_dir = Path(self.model_path)
        key = (str(model_dir), str(cache_dir))
        with _SESSIONS_LOCK:
            loaded = _SESSIONS.get(key)
            if loaded is None:
                loaded = _load(onnx_model_file(model_dir, Path(cache_dir)), model_dir)
                _SESSIONS[key] = loaded
        self._session, self._tokenizer, self._dimension, self.onnx_file = loaded
        self.calls = 0
        self.texts = 0

    @property
    def name(self) -> str:
        """The model name recorded beside every vector (the same as the PyTorch embedder's)."""
        return self._name

    @property
    def dimension(self) -> int:
        """The model's embedding dimension (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(pooled / norms, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts``; batches of similar length waste no padding."""
        self.calls += 1
        self.texts += len(texts)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            out[chosen] = self._batch([texts[i] for i in chosen])
        return out
