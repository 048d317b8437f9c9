"""The two corpora of the course, a character tokenizer, and batch sampling.

* ``"shakespeare"``: tiny Shakespeare from Karpathy's char-rnn, the corpus of the "Let's build
  GPT" lecture (gpt.py) and nanoGPT's shakespeare_char. 1,115,394 characters, vocabulary 65.
* ``"song_ci"``: the Song ci (宋词) of the chinese-poetry project, the source babyGPT's ``ci.txt``
  was extracted from. Built from 22 JSON files; 1,983,735 characters, vocabulary 6,045.

Two corpora are derived from Song ci for fine-tuning, selected by the ``author`` field of the
JSON and built from the same files in the same order and format:

* ``"song_ci_su_shi"``: the 362 ci of Su Shi (苏轼), 28,769 characters: a small target that a
  pre-trained babyGPT overfits within minutes;
* ``"song_ci_without_su_shi"``: the other 20,688 ci, 1,954,966 characters: the pre-training
  corpus that has never seen Su Shi.

Both are tokenised with the vocabulary of ``song_ci`` (:func:`vocab_corpus`), so a model
pre-trained on one is fine-tuned on the other without changing its embedding.

:func:`load_corpus` downloads each file from its public address once, checks its sha256, and
keeps it in a cache directory: ``$DROPOUTLIB_DATA`` if set, otherwise a user cache directory
(``$XDG_CACHE_HOME/dropoutlib/data`` or ``~/.cache/dropoutlib/data``). The layout is::

    tinyshakespeare.txt
    chinese-poetry-song-ci/ci.song.0.json ... ci.song.21000.json

so a directory prepared by hand (or ``../shared/data`` in tests and CI) works the same way.
Downloads are written atomically (temporary file + ``os.replace``) and only after their checksum
matched, so the cache never holds a partial or wrong file. Every file is verified again each time
it is read. With ``DROPOUTLIB_OFFLINE=1`` in the environment nothing is downloaded (as with
``download=False``): ``python -m dropoutlib grade`` sets it for the notebooks it executes.

:func:`get_batch` samples random windows exactly like babyGPT's ``get_batch``
(``torch.randint(len(data) - block_size, (batch_size,))``), but from a ``torch.Generator`` when
one is given, so a run's batches are reproducible without touching the global RNG.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import numbers
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import torch

from dropoutlib._io import atomic_write

__all__ = [
    "CORPORA",
    "DERIVED",
    "ChecksumError",
    "CorpusUnavailableError",
    "CharTokenizer",
    "corpus_sha256",
    "data_dir",
    "get_batch",
    "load_corpus",
    "map_by_rank",
    "train_val_split",
    "vocab_corpus",
]

DOWNLOAD_TIMEOUT_S = 60.0

# --- what each corpus is made of -------------------------------------------------------------

_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
_SHAKESPEARE_FILE = "tinyshakespeare.txt"
_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

_SONG_CI_DIR = "chinese-poetry-song-ci"
# The canonical address follows the project's master branch; the commit these checksums were
# taken from is a fallback, so a later upstream edit cannot make the corpus unavailable.
_SONG_CI_COMMIT = "99ebbef7e1345c0985c44b9fd96a3f9e776f117b"
_SONG_CI_URLS = (
    "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/宋词/{file}",
    "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/"
    + _SONG_CI_COMMIT
    + "/宋词/{file}",
)
# sha256 of each JSON file, in the order the corpus text is built (numeric: 0, 1000, ..., 21000).
_SONG_CI_FILES = {
    "ci.song.0.json": "7761bc5ef50305753ea3dcea9e1ef3164e153e3ee366169e9c5a9a7d85b21b22",
    "ci.song.1000.json": "5f79a2d9011e6d414f04e51176c5d4f4c762fd784dce98b035968367b6f2ef4e",
    "ci.song.2000.json": "f700d8e14df62d371dfba7ce18bf1641c304540907b26b68d356c4b6b256fe8d",
    "ci.song.3000.json": "1791391a8a2ca855e133f7ea48bf0c104b3890d628ae2929f9378960a66c1427",
    "ci.song.4000.json": "48c3e33bab920e17929ea08300c4c5ca72b246669ed5767e5cb985d894514150",
    "ci.song.5000.json": "1e10ee4be18e225c2efa0bb8d58691ebb6d40cd83588f308d9635a37392bdadd",
    "ci.song.6000.json": "8ff2b21b4e92a435f72da04fcb935a6a3498e839cde5c837ea418871f133c248",
    "ci.song.7000.json": "8fe3f7ac40ab7d6c80cdd42305e848c1dc51cff26bc42b335ddfdfaccd48d1ba",
    "ci.song.8000.json": "8d9c26a4aa62264d2eea853944e47a1420dd94e7465bee7c3e52cec2cf8bd653",
    "ci.song.9000.json": "bd6a4d90b17ef195f32e38dfa483b0d39d671db3cdd5b462b292aac6916f26a6",
    "ci.song.10000.json": "8d37b015132bf9776fb41c44d445572d2cd9bf5e250dde213596c480e5962545",
    "ci.song.11000.json": "9a4f5082638f82339afbde99f1af7bae1719207f77d5516cb8f6d370c9c1d0c9",
    "ci.song.12000.json": "a89094fed6b3003c171a9036052ff6a289367b4dd68d97c000b5f5e90ea2df2f",
    "ci.song.13000.json": "dd51b268dec508d44a18e2d4a84edd109ff8c532b6eace4160ea88674f62515c",
    "ci.song.14000.json": "9d7410bcaebc31685e3d999c6af218a3583fd8e9f57cacf640c66607121e2dbf",
    "ci.song.15000.json": "5e441c85494955290138ed8561decb3f302d3628fe390cea3477e1d446039525",
    "ci.song.16000.json": "d003d66c58e40fab1d2a40f17f6149eef53a126c7e54b035153ceae4fe707742",
    "ci.song.17000.json": "b46b9f908b5bb0a3b4dd18f268c233a50b8b794d6ab1ec79afcb3612792f0574",
    "ci.song.18000.json": "751cf8ee2a925f4957d010e6f4bf46cc9e0a90a176cfb731185ba43ecb72b14b",
    "ci.song.19000.json": "c6becb6a81cc04e25564f501ff768482b6c328d976c48e2003c8b8bd94ef4612",
    "ci.song.20000.json": "1dfc08051969ab2ecdfa3eea8b29bf79d3dfe9ad1133127f25f622c2b14348c2",
    "ci.song.21000.json": "3344ba453ae7840339944ce29e4295b5b668d79f79210a99e6e1a58ee874dbc5",
}
# Corpora derived from a base corpus: name -> (base, author, keep). keep=True: only the poems of
# that author; keep=False: every poem but theirs. Tokenised with the base corpus's vocabulary.
DERIVED: dict[str, tuple[str, str, bool]] = {
    "song_ci_su_shi": ("song_ci", "苏轼", True),
    "song_ci_without_su_shi": ("song_ci", "苏轼", False),
}
# sha256 of the UTF-8 text each corpus name stands for (what load_corpus returns).
_TEXT_SHA256 = {
    "shakespeare": _SHAKESPEARE_SHA256,  # the text is the file, byte for byte
    "song_ci": "9c09515a7dfa701f45c7e81985698965b8c4064e7364dd5277a39ffc242fbc83",
    "song_ci_su_shi": "07ea7b0389220d4e3e3b26f7046934a0b91e18ae50c4b7870512fae8ed317a99",
    "song_ci_without_su_shi": "b3e7f4a152ff00c874fb9b061034053e97333f448432928df42b589db2c9f175",
}

CORPORA: tuple[str, ...] = tuple(_TEXT_SHA256)


class CorpusUnavailableError(FileNotFoundError):
    """A corpus file is not in the cache and could not be downloaded."""


class ChecksumError(ValueError):
    """A corpus file or text does not have the sha256 it must have; it was not used."""


# --- cache and download ------------------------------------------------------------------------


def data_dir() -> Path:
    """The corpus cache: ``$DROPOUTLIB_DATA``, else ``$XDG_CACHE_HOME/dropoutlib/data``, else
    ``~/.cache/dropoutlib/data``. Not created here; downloads create it when needed."""
    env = os.environ.get("DROPOUTLIB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dropoutlib" / "data"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """GET ``url`` and return its body: the one place that touches the network (tests patch it)."""
    parts = urllib.parse.urlsplit(url)
    quoted = parts._replace(path=urllib.parse.quote(parts.path)).geturl()  # 宋词 -> %E5%AE%8B...
    request = urllib.request.Request(quoted, headers={"User-Agent": "dropoutlib"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def offline() -> bool:
    """True when ``$DROPOUTLIB_OFFLINE`` is set to anything but ``""``, ``0`` or ``false``: then
    :func:`load_corpus` never downloads."""
    return os.environ.get("DROPOUTLIB_OFFLINE", "").strip().lower() not in ("", "0", "false")


def _cached_file(relpath: str, sha256: str, urls: Sequence[str], download: bool) -> bytes:
    """The verified bytes of one corpus file: from the cache, else downloaded into it."""
    path = data_dir() / relpath
    why_not = "download=False"
    if download and offline():
        download, why_not = False, "DROPOUTLIB_OFFLINE is set"
    stale = None  # describes a cached file whose checksum is wrong
    if path.is_file():
        data = path.read_bytes()
        actual = _sha256(data)
        if actual == sha256:
            return data
        stale = f"{path} has sha256 {actual}, expected {sha256}"
        if not download:
            raise ChecksumError(f"{stale}; delete it or replace it with the file from {urls[0]}")

    if not download:
        raise CorpusUnavailableError(
            f"corpus file {relpath!r} is not at {path} and {why_not}; download it from "
            f"{urls[0]} and put it there, or set DROPOUTLIB_DATA to a directory that holds it"
        )

    failures = []
    for url in urls:
        try:
            data = _fetch(url)
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets
            failures.append(f"{url}: {err}")
            continue
        actual = _sha256(data)
        if actual != sha256:
            # Never written: a wrong download must not reach the cache.
            failures.append(f"{url}: sha256 {actual}, expected {sha256}")
            continue
        atomic_write(path, data)  # also replaces a stale cached file
        return data

    reasons = "; ".join(failures)
    if stale is not None or any("sha256" in f for f in failures):
        raise ChecksumError(
            f"no copy of corpus file {relpath!r} with the expected sha256 {sha256} was found "
            f"({stale + '; ' if stale else ''}{reasons}); the file was not used"
        )
    raise CorpusUnavailableError(
        f"corpus file {relpath!r} is not at {path} and could not be downloaded ({reasons}). "
        f"Download it from {urls[0]} and put it at {path}, or set DROPOUTLIB_DATA to a "
        f"directory that holds it"
    )


def _check_name(name) -> str:
    if name not in _TEXT_SHA256:
        raise ValueError(f"name must be one of {', '.join(map(repr, CORPORA))}, got {name!r}")
    return name


def _song_ci_text(files: Sequence[bytes], select=None) -> str:
    # Format fixed by ../shared/data/README.md: files in numeric order, poems in file order,
    # each poem "rhythmic\n" + lines joined by "\n" + "\n\n", nothing between poems.
    # select(poem) -> bool keeps a subset (the derived corpora), in the same order and format.
    parts = []
    for raw in files:
        for poem in json.loads(raw.decode("utf-8")):
            if select is None or select(poem):
                parts.append(poem["rhythmic"] + "\n" + "\n".join(poem["paragraphs"]) + "\n\n")
    return "".join(parts)


def vocab_corpus(name: str) -> str:
    """The corpus whose characters make ``name``'s vocabulary: ``name`` itself, or the base of a
    derived corpus (``vocab_corpus("song_ci_su_shi") == "song_ci"``)."""
    _check_name(name)
    return DERIVED[name][0] if name in DERIVED else name


def load_corpus(name: str, *, download: bool = True) -> str:
    """Return the text of corpus ``name`` (one of :data:`CORPORA`).

    Files come from the cache (:func:`data_dir`) or are downloaded into it; every file and the
    final text are checked against hard-coded sha256 values. Raises
    :class:`CorpusUnavailableError` (a ``FileNotFoundError``) naming the missing file and where
    to put it when it is neither cached nor downloadable, and :class:`ChecksumError` when no copy
    with the right checksum exists (a wrong file is never used nor written to the cache).
    """
    _check_name(name)
    if name == "shakespeare":
        # Decoded from bytes (no newline translation), so the text's sha256 is the file's.
        text = _cached_file(
            _SHAKESPEARE_FILE, _SHAKESPEARE_SHA256, (_SHAKESPEARE_URL,), download
        ).decode("utf-8")
    else:  # song_ci and the corpora derived from it
        raw = [
            _cached_file(
                f"{_SONG_CI_DIR}/{file}",
                sha,
                [u.format(file=file) for u in _SONG_CI_URLS],
                download,
            )
            for file, sha in _SONG_CI_FILES.items()
        ]
        select = None
        if name in DERIVED:
            _, author, keep = DERIVED[name]

            def select(poem):
                return (poem["author"] == author) == keep

        text = _song_ci_text(raw, select)
    actual = _sha256(text.encode("utf-8"))
    if actual != _TEXT_SHA256[name]:  # only reachable if the build rule above changed
        raise ChecksumError(
            f"the {name} text has sha256 {actual}, expected {_TEXT_SHA256[name]}; not used"
        )
    return text


def corpus_sha256(name: str) -> str:
    """The sha256 (hex) of the UTF-8 text that ``load_corpus(name)`` returns.

    A constant of the library, verified on every load, so run caches can key on it without
    reading the corpus.
    """
    return _TEXT_SHA256[_check_name(name)]


# --- tokenizer -----------------------------------------------------------------------------------


class CharTokenizer:
    """Character-level tokenizer, as in babyGPT and gpt.py: the vocabulary is the sorted set of
    characters of ``text``; token id = position in that list.

    ``decode(encode(s)) == s`` for every string made of vocabulary characters; other characters
    raise a ``ValueError`` that lists them (nothing is mapped to an "unknown" token silently).
    """

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must contain at least one character to build a vocabulary")
        self.chars: list[str] = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        stoi = self.stoi
        try:
            return [stoi[c] for c in s]
        except KeyError:
            unknown = sorted({c for c in s if c not in stoi})
            shown = ", ".join(repr(c) for c in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"cannot encode {len(unknown)} character(s) not in the vocabulary of "
                f"{self.vocab_size}: {shown}{more}"
            ) from None

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids must be 1-D, got a tensor of shape {tuple(ids.shape)}")
            ids = ids.tolist()
        try:
            return "".join(self.itos[i] for i in ids)
        except (KeyError, TypeError):
            bad = [i for i in ids if not isinstance(i, int) or i not in self.itos][:10]
            raise ValueError(f"ids must be integers in [0, {self.vocab_size}), got {bad}") from None

    def to_dict(self) -> dict:
        """A JSON-serialisable description, for checkpoints; :meth:`from_dict` inverts it."""
        return {"type": "char", "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        if (
            not isinstance(d, dict)
            or d.get("type") != "char"
            or not isinstance(d.get("chars"), str)
        ):
            raise ValueError(f"not a CharTokenizer dict (want type 'char' and chars): {d!r:.80}")
        tok = cls(d["chars"])
        if "".join(tok.chars) != d["chars"]:
            raise ValueError("chars must be sorted and without repeats")
        return tok

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# --- split and batches ---------------------------------------------------------------------------


def train_val_split(data, train_fraction: float = 0.9):
    """First ``int(train_fraction * len(data))`` items for training, the rest for validation,
    as babyGPT and gpt.py split (by position, no shuffling). Works on tensors, lists and str."""
    if (
        isinstance(train_fraction, bool)
        or not isinstance(train_fraction, numbers.Real)
        or not 0.0 < train_fraction < 1.0
    ):
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    n = int(train_fraction * len(data))
    if n == 0 or n == len(data):
        raise ValueError(
            f"train_fraction={train_fraction} leaves an empty split of data of length {len(data)}"
        )
    return data[:n], data[n:]


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator=None, device="cpu"):
    """Sample ``batch_size`` windows of ``block_size`` tokens and their next-token targets.

    Offsets are ``torch.randint(len(data) - block_size, (batch_size,), generator=generator)``,
    babyGPT's rule, so ``x[b] = data[i:i+block_size]`` and ``y[b] = data[i+1:i+block_size+1]``.
    ``generator`` (a CPU ``torch.Generator``) makes batches reproducible; ``None`` uses the
    global RNG as babyGPT did. Returns ``(x, y)``, both ``(batch_size, block_size)`` on ``device``.
    """
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError(
            f"data must be a 1-D tensor of token ids, got "
            f"{tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__}"
        )
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise ValueError(f"data must hold integer token ids, got dtype {data.dtype}")
    block_size = _check_positive_int(block_size, "block_size")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if block_size >= len(data):
        raise ValueError(
            f"block_size must be smaller than len(data) = {len(data)} (one extra token is the "
            f"target), got {block_size}"
        )
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = (ix[:, None] + torch.arange(block_size)).to(data.device)
    x = data[offsets]
    y = data[offsets + 1]
    return x.to(device), y.to(device)


def map_by_rank(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``source`` token ids rewritten in ``target``'s vocabulary by frequency rank: the k-th most
    frequent token of ``source`` becomes the k-th most frequent token of ``target``, and ranks
    beyond the number of distinct tokens in ``target`` wrap around (modulo it). Ties are broken
    by the smaller id.

    A model of ``target``'s corpus can then read ``source``'s text: the common symbols stay
    common, but the sequences follow another language (e.g. Song ci read by a Shakespeare model,
    a foreign input for MC dropout's uncertainty). Both are 1-D integer tensors; the result has
    ``source``'s shape and ``target``'s dtype.
    """
    for name, t in (("source", source), ("target", target)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() == 0:
            raise ValueError(f"{name} must be a non-empty 1-D tensor of token ids")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer token ids, got dtype {t.dtype}")
        if int(t.min()) < 0:
            raise ValueError(f"{name} must hold non-negative token ids")

    def by_rank(t: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(t)
        ids = torch.nonzero(counts).squeeze(1)  # increasing ids: stable sort breaks ties by id
        order = torch.sort(counts[ids], descending=True, stable=True).indices
        return ids[order]

    src_rank, tgt_rank = by_rank(source), by_rank(target)
    rank_of = torch.empty(int(source.max()) + 1, dtype=torch.long)
    rank_of[src_rank] = torch.arange(len(src_rank))
    return tgt_rank[rank_of[source] % len(tgt_rank)].to(target.dtype)
