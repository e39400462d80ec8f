"""Real English text that ships with Python, and a byte-level tokenizer for it.

The corpus is the documentation strings of a fixed list of standard-library modules,
collected at run time with ``inspect`` (nothing is downloaded). The tokenizer maps each
UTF-8 byte to its value (0..255) and adds one special token, end-of-text (256), written
between documents. A model trained on it writes text a person can read, which the
Markov corpus (``data.py``, the benchmarks' default) cannot show.
"""
from __future__ import annotations

import codecs
import importlib
import inspect
import json
import sys
import warnings
from pathlib import Path

import torch

# Pure-Python modules with long, well-written docstrings and no side effects on import.
# A fixed list (not sys.stdlib_module_names) so that the corpus is the same on every run
# of one Python version; modules missing from a build are skipped.
MODULES = (
    "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "collections", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email",
    "enum", "fractions", "ftplib", "functools", "gettext", "glob", "gzip", "heapq", "hmac",
    "html", "http.client", "http.server", "imaplib", "inspect", "io", "ipaddress", "json",
    "logging", "mailbox", "numbers", "operator", "optparse", "os", "pathlib", "pickle",
    "pprint", "queue", "random", "re", "shlex", "shutil", "smtplib", "socket", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "tokenize",
    "traceback", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "weakref", "xml.dom.minidom", "zipfile",
)


class ByteTokenizer:
    """UTF-8 bytes <-> token ids: byte b is id b; ``EOT`` (256) separates documents.

    ``vocab_size`` is 257. Saved next to a model as ``byte_tokenizer.json`` so that
    ``--mode generate`` can decode what the model writes.
    """

    EOT = 256
    vocab_size = 257
    FILE = "byte_tokenizer.json"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        """ids -> text; end-of-text becomes a blank line, bytes that are not UTF-8 become U+FFFD."""
        return self.decoder().feed(ids)

    def decoder(self) -> "StreamDecoder":
        return StreamDecoder()

    def save(self, folder) -> Path:
        path = Path(folder) / self.FILE
        path.write_text(json.dumps({"type": "utf-8 bytes", "byte_ids": [0, 255],
                                    "special_tokens": {"<|endoftext|>": self.EOT},
                                    "vocab_size": self.vocab_size}, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder) -> "ByteTokenizer | None":
        """The tokenizer saved in ``folder``, or None when the model has none (Markov ids)."""
        path = Path(folder) / cls.FILE
        if not path.is_file():
            return None
        meta = json.loads(path.read_text())
        if meta.get("type") != "utf-8 bytes" or meta.get("vocab_size") != cls.vocab_size:
            raise ValueError(f"{path}: not a byte tokenizer this version reads "
                             f"(expected type 'utf-8 bytes', vocab_size {cls.vocab_size})")
        return cls()


class StreamDecoder:
    """Token ids -> text as they arrive; a character split across tokens waits for its end."""

    def __init__(self):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, ids) -> str:
        out = []
        for i in (int(x) for x in ids):
            if i == ByteTokenizer.EOT:
                out.append(self._utf8.decode(b"", final=True) + "\n\n")
            elif 0 <= i < 256:
                out.append(self._utf8.decode(bytes([i])))
            else:
                raise ValueError(f"token id {i} is outside the byte vocabulary (0..256)")
        return "".join(out)


def stdlib_docstrings(modules=MODULES) -> list[str]:
    """Every non-empty docstring of the modules and of their public classes, functions and
    methods, in a fixed order, each once."""
    docs, seen = [], set()

    def add(obj):
        doc = inspect.getdoc(obj)
        if doc and len(doc) > 40 and doc not in seen:
            seen.add(doc)
            docs.append(doc)

    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        with warnings.catch_warnings():   # reading a deprecated alias (typing.io) warns
            warnings.simplefilter("ignore", DeprecationWarning)
            _add_module(module, add)
    return docs


def _add_module(module, add) -> None:
    """``add`` the docstrings of ``module``, its own public classes and functions, and the
    classes' methods (names sorted, so the order is fixed)."""
    add(module)
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        add(obj)
        if inspect.isclass(obj):
            for _, member in sorted(vars(obj).items()):
                if inspect.isfunction(member) or inspect.ismethod(member):
                    add(member)


class TextCorpus:
    """The stdlib docstrings as one stream of byte ids; batches are random windows of it.

    ``tokens``: (N,) int64, documents joined by ``ByteTokenizer.EOT``. Same sampling
    interface as ``MarkovCorpus``: ``sample(batch, seq_len, generator)`` and ``batches``.
    """

    def __init__(self, modules=MODULES):
        self.tokenizer = ByteTokenizer()
        self.vocab_size = self.tokenizer.vocab_size
        ids: list[int] = []
        for doc in stdlib_docstrings(modules):
            ids += self.tokenizer.encode(doc) + [ByteTokenizer.EOT]
        if not ids:
            raise RuntimeError("no docstrings found: is this Python built without its "
                               "standard library sources (python -OO strips docstrings)?")
        self.tokens = torch.tensor(ids, dtype=torch.int64)
        self.source = f"docstrings of {len(modules)} stdlib modules, Python {sys.version.split()[0]}"

    def sample(self, batch_size: int, seq_len: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """(batch_size, seq_len) int64 windows starting at random offsets (on CPU)."""
        if batch_size <= 0 or seq_len <= 0:
            raise ValueError(f"batch_size and seq_len must be positive, got {batch_size}, {seq_len}")
        if seq_len > len(self.tokens):
            raise ValueError(f"seq_len {seq_len} exceeds the corpus ({len(self.tokens)} tokens)")
        starts = torch.randint(len(self.tokens) - seq_len + 1, (batch_size,), generator=generator)
        return torch.stack([self.tokens[s:s + seq_len] for s in starts.tolist()])

    def batches(self, batch_size: int, seq_len: int, seed: int = 1):
        """An endless, seeded iterator of fresh batches."""
        g = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, seq_len, generator=g)
