"""Sentence encoding on ONNX Runtime: queries at a third of the latency, catalogs many times faster.

A search request encodes one short query. PyTorch eager spends most of that time in per-operator
overhead, not arithmetic: 16 ms for a ten-token query with MiniLM-L6 on one core of this project's
machine, against about 6 ms for ONNX Runtime's fused graph of the same model, with vectors equal to
1e-6.

A catalog is many long texts, bound by the matrix products instead. Three things make it fast
(:meth:`OnnxSentenceEncoder.encode` with ``batch_size``): texts are sorted by token length and
batched with their neighbours, so a batch pads to its own longest text, not the catalog's; the
graph can be quantised to int8 weights (``quantized``, ONNX Runtime's dynamic quantisation: the
linear layers run on int8 products, activations are quantised on the fly), which is what the CPU's
integer units are for; and ``max_length`` cuts item texts where a title and the start of the
description have said what the item is. Vectors then differ from the float model's, so the
embedding cache keys them apart (:class:`~shopaug.encode.text_encoder.TextEncoder`), and the
quality cost is measured, not assumed (``benchmarks/catalog_encoding.py``).

The graph (transformer, mean pooling, L2 normalisation) is exported once per model identity to the
user cache, written to a temporary name and renamed, so workers starting together never load half a
file. Models whose sentence-transformers pipeline is anything other than Transformer -> mean
Pooling [-> Normalize] are refused with the reason; callers then stay on PyTorch.

sentence-transformers has renamed its modules (``models.Transformer`` up to 5.3; 5.4 and 6 write
``base.modules.transformer.Transformer`` and the like) and its pooling config (``pooling_mode_*``
flags, then one ``pooling_mode``) while the computation stayed the same, so every spelling a
release writes is read here: a fine-tune saved by a newer release would otherwise be refused and
all its queries run on PyTorch at twice the latency.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shopaug.encode.text_encoder import model_identity
from shopaug.paths import user_cache_dir

#: The ``type`` each release of sentence-transformers writes to modules.json for the three steps
#: exported here: ``models.*`` up to 5.3, then the new homes (5.4; Normalize moved again in 6.0).
_STEP_TYPES: dict[str, frozenset[str]] = {
    "Transformer": frozenset(
        {
            "sentence_transformers.models.Transformer",
            "sentence_transformers.base.modules.transformer.Transformer",
        }
    ),
    "Pooling": frozenset(
        {
            "sentence_transformers.models.Pooling",
            "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        }
    ),
    "Normalize": frozenset(
        {
            "sentence_transformers.models.Normalize",
            "sentence_transformers.sentence_transformer.modules.normalize.Normalize",
            "sentence_transformers.base.modules.normalize.Normalize",
        }
    ),
}
_PIPELINES = (("Transformer", "Pooling", "Normalize"), ("Transformer", "Pooling"))
_OPSET = 17
_EXPORT_LOCK = threading.Lock()


class OnnxUnavailable(RuntimeError):
    """The model cannot be encoded on ONNX Runtime here; the message says why."""


def onnx_unsupported_reason(model_dir: Path) -> str | None:
    """None when ``model_dir`` can be exported, else why not (missing library, other pooling)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install 'shopaug[encode]')"
    model_dir = Path(model_dir)
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        return f"{modules_file} is missing: not a sentence-transformers model folder"
    modules = json.loads(modules_file.read_text())
    types = [module["type"] for module in modules]
    if tuple(_step_name(t) for t in types) not in _PIPELINES:
        return f"pipeline {types} is not Transformer -> Pooling [-> Normalize]"
    return (
        _pooling_reason(model_dir / modules[1]["path"] / "config.json")
        or _transformer_reason(model_dir / "sentence_bert_config.json")
        or _prompt_reason(model_dir / "config_sentence_transformers.json")
    )


def _step_name(module_type: str) -> str | None:
    """``Transformer``, ``Pooling`` or ``Normalize`` for any release's name of it, else None."""
    return next((step for step, names in _STEP_TYPES.items() if module_type in names), None)


def _pooling_reason(config_file: Path) -> str | None:
    """Why the pooling is not plain mean pooling, if it is not. Up to 5.x the config holds one
    ``pooling_mode_*_tokens`` flag per mode; 6.x writes ``pooling_mode``: a name or a list."""
    pooling = json.loads(config_file.read_text())
    if "pooling_mode" in pooling:
        mode = pooling["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
        if modes != ["mean"]:
            return f"pooling {modes} is not mean pooling ({config_file})"
        return None
    flags = [key for key, on in pooling.items() if key.startswith("pooling_mode") and on]
    if flags != ["pooling_mode_mean_tokens"]:
        return f"pooling {flags} is not mean pooling ({config_file})"
    return None


def _optional_json(path: Path) -> dict[str, Any]:
    """A config file sentence-transformers may or may not have written ({} when absent)."""
    return json.loads(path.read_text()) if path.exists() else {}


def _transformer_reason(config_file: Path) -> str | None:
    """Why the Transformer step is not the exported graph (hidden states of the tokenizer's
    ids), if it is not: a task other than feature extraction (6.x names it)."""
    task = _optional_json(config_file).get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        return f"transformer_task {task!r} is not feature-extraction ({config_file})"
    return None


def _prompt_reason(config_file: Path) -> str | None:
    """A default prompt is put before every text by sentence-transformers, not by the graph."""
    name = _optional_json(config_file).get("default_prompt_name")
    if name:
        return f"default prompt {name!r} is prepended to texts ({config_file})"
    return None


def default_onnx_cache_dir() -> Path:
    """``$SHOPAUG_CACHE_DIR/onnx`` (see :func:`shopaug.paths.user_cache_dir`)."""
    return user_cache_dir("onnx")


class OnnxSentenceEncoder:
    """Normalised sentence vectors of a mean-pooling sentence-transformers model on ONNX Runtime.

    ``threads`` is ONNX Runtime's intra-op thread count; None follows ``torch.get_num_threads()``
    so one setting (a benchmark's ``--threads``, a worker's torch setting) governs both backends.
    Raises :class:`OnnxUnavailable` when the model or the environment cannot do it.
    """

    def __init__(
        self,
        model_dir: Path,
        threads: int | None = None,
        cache_dir: Path | None = None,
        quantized: bool = False,
        max_length: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        reason = onnx_unsupported_reason(self.model_dir)
        if reason is not None:
            raise OnnxUnavailable(f"{self.model_dir}: {reason}")
        cache = Path(cache_dir) if cache_dir is not None else default_onnx_cache_dir()
        float_graph = cache / f"{model_identity(self.model_dir)}-opset{_OPSET}.onnx"
        self.graph_path = float_graph.with_suffix(".int8.onnx") if quantized else float_graph
        if not self.graph_path.exists():
            with _EXPORT_LOCK:
                if not float_graph.exists():
                    export_mean_pooled_graph(self.model_dir, float_graph)
                if quantized and not self.graph_path.exists():
                    quantize_graph(float_graph, self.graph_path)
        self.threads = threads if threads is not None else _torch_threads()
        self._tokenizer = _tokenizer(self.model_dir)
        model_limit = _max_seq_length(self.model_dir, self._tokenizer)
        self.max_length = min(model_limit, max_length) if max_length else model_limit
        self.lower_case = _lower_case(self.model_dir)
        self._session = _session(self.graph_path, self.threads)

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """float32 (len(texts), dim), L2-normalised. Without ``batch_size`` all texts are padded
        together (a few short queries); with it, in batches of texts of similar length."""
        if self.lower_case:  # what sentence-transformers' lowercasing normaliser does first
            texts = [text.lower() for text in texts]
        if batch_size is None or len(texts) <= batch_size:
            return self._run(self._tokens(texts))
        ids = self._tokens(texts, pad=False)["input_ids"]
        order = np.argsort([len(row) for row in ids], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        vectors = [self._run(_padded([ids[i] for i in rows])) for rows in batches]
        out = np.empty((len(texts), vectors[0].shape[1]), dtype=np.float32)
        for rows, batch in zip(batches, vectors, strict=True):
            out[rows] = batch
        return out

    def _tokens(self, texts: list[str], pad: bool = True) -> Any:
        return self._tokenizer(
            texts,
            return_tensors="np" if pad else None,
            truncation=True,
            max_length=self.max_length,
            padding=pad,
        )

    def _run(self, features: Any) -> np.ndarray:
        feeds = {
            "input_ids": np.asarray(features["input_ids"], dtype=np.int64),
            "attention_mask": np.asarray(features["attention_mask"], dtype=np.int64),
        }
        return np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)


def _padded(rows: list[list[int]]) -> dict[str, np.ndarray]:
    """Token ids right-padded with 0 to the longest row, and the mask that says which are real
    (the pooled vector reads the mask only, so the padding id does not matter)."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def quantize_graph(float_graph: Path, out: Path) -> Path:
    """int8 weights for the linear layers of ``float_graph`` (ONNX Runtime's dynamic
    quantisation), written atomically to ``out``.

    Two settings matter (measured on 200 Scientific item texts against the float vectors): one
    scale per output channel, not per matrix, lifts the mean cosine from 0.942 to 0.994 (worst
    text 0.886 to 0.988); and only products with a weight matrix are quantised, not attention's
    products of two activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = out.with_name(f".{out.name}.{os.getpid()}.partial.onnx")
    quantize_dynamic(
        str(float_graph),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"MatMulConstBOnly": True},
    )
    partial.replace(out)
    return out


def export_mean_pooled_graph(model_dir: Path, out: Path) -> Path:
    """Export transformer + mean pooling + L2 normalisation of ``model_dir`` to ``out`` (atomic)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    class MeanPooled(torch.nn.Module):
        """What sentence-transformers computes for Transformer -> mean Pooling -> Normalize."""

        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True).eval()
    graph = MeanPooled(model[0].auto_model).eval()
    # A padded pair, so the trace keeps the attention-mask path (an all-ones mask may be elided).
    sample = model.tokenizer(
        ["a sample query", "a longer sample query with more words"],
        return_tensors="pt",
        padding=True,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    axes = {0: "batch", 1: "tokens"}
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer warns that shape checks become constants; they are, for an encoder whose
        # mask always spans the input (the tests compare padded batches with the reference).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (sample["input_ids"], sample["attention_mask"]),
            str(partial),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            opset_version=_OPSET,
            dynamo=False,
        )
    partial.replace(out)
    return out


def _max_seq_length(model_dir: Path, tokenizer: Any) -> int:
    """Where sentence-transformers truncates: ``max_seq_length`` of sentence_bert_config.json
    when it is there (5.x writes it), else (6.x writes none) the tokenizer's
    ``model_max_length`` capped at the model's ``max_position_embeddings``, as it does."""
    value = _optional_json(model_dir / "sentence_bert_config.json").get("max_seq_length")
    if value is not None:
        return int(value)
    positions = _optional_json(model_dir / "config.json").get("max_position_embeddings")
    limits = [getattr(tokenizer, "model_max_length", None), positions]
    # An unset model_max_length is a huge sentinel (about 1e30), not a limit.
    known = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(known, default=256)


def _lower_case(model_dir: Path) -> bool:
    """``do_lower_case`` of the Transformer step: sentence-transformers lowercases texts before
    its tokenizer reads them, whatever the tokenizer does."""
    return bool(_optional_json(model_dir / "sentence_bert_config.json").get("do_lower_case"))


def _tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


def _session(graph: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def _torch_threads() -> int:
    try:
        import torch
    except ImportError:
        return 1
    return int(torch.get_num_threads())
