"""Tokenizers: byte-level by default (offline, nothing to configure), or any Hugging Face
`tokenizer.json` through the `tokenizers` package. Every domain records its tokenizer's
spec and hash; a workspace refuses to mix two."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mixer.errors import MixerError


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eos_id: int

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]: ...

    def spec(self) -> dict: ...


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


@dataclass
class ByteTokenizer:
    """UTF-8 bytes as ids 0..255; id 256 ends a document."""

    name: str = "bytes"
    vocab_size: int = 257
    eos_id: int = 256

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8", errors="replace"), dtype=np.uint8).astype(np.uint16)
                for t in texts]

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def spec(self) -> dict:
        return {"kind": "bytes", "hash": "bytes-v1"}


class HFTokenizer:
    """A Hugging Face `tokenizer.json`, loaded from a local file (no hub access)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as _HF

        path = Path(path)
        if not path.is_file():
            raise MixerError(f"tokenizer file not found: {path}")
        raw = path.read_bytes()
        try:
            self._tok = _HF.from_str(raw.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception
            raise MixerError(f"cannot read tokenizer {path}: {str(exc).splitlines()[0]}") from None
        self.path = path
        self.hash = hashlib.sha256(raw).hexdigest()[:16]
        self.name = f"hf:{path.name}"
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True) + 1
        self.eos_id = self._find_eos()

    def _find_eos(self) -> int:
        vocab = self._tok.get_vocab(with_added_tokens=True)
        for candidate in ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"):
            if candidate in vocab:
                return int(vocab[candidate])
        return self.vocab_size - 1  # one id past the vocabulary, reserved as end-of-document

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        # encode_batch runs on all cores inside the Rust library.
        encodings = self._tok.encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.uint32) for e in encodings]

    def spec(self) -> dict:
        return {"kind": "hf", "path": str(self.path), "hash": self.hash}


def load_tokenizer(path: str | Path | None) -> Tokenizer:
    return ByteTokenizer() if path is None else HFTokenizer(Path(path))
