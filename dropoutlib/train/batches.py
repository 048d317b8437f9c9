"""The data a run sees: token tensors of a corpus, the training subset, and input noise.

* :func:`corpus_tensors`: a corpus tokenised with its vocabulary and split 90/10, cached per
  process. Corpora derived from another (``song_ci_su_shi``) use their base corpus's vocabulary,
  so a model pre-trained on the base can be fine-tuned on them.
* ``train_tokens``: only the first N tokens of the training split are used; batches are random
  windows inside them, and the run counts its **epochs**, passes over those tokens.
* ``token_mask_rate``: each input token is replaced by a uniformly random token with this
  probability (the target is never touched), from a generator of the run's own.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["corpus_tensors", "vocab_size", "training_tokens", "mask_tokens"]


@functools.lru_cache(maxsize=4)
def _corpus(name: str, data_dir: str):
    from dropoutlib.data import CharTokenizer, load_corpus, vocab_corpus

    tokenizer = CharTokenizer(load_corpus(vocab_corpus(name)))
    text = load_corpus(name)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = _split(data)
    return tokenizer, train_data, val_data


def _split(data):
    from dropoutlib.data import train_val_split

    return train_val_split(data, 0.9)


def corpus_tensors(name: str):
    """``(tokenizer, train tokens, validation tokens)`` of corpus ``name`` (first 90% / rest)."""
    from dropoutlib.data import data_dir

    return _corpus(name, str(data_dir()))


def vocab_size(corpus: str) -> int:
    """The size of the character vocabulary of ``corpus`` (65 for shakespeare, 6045 for song_ci
    and the corpora derived from it)."""
    return corpus_tensors(corpus)[0].vocab_size


def training_tokens(train_data: torch.Tensor, train_tokens: int | None, block_size: int):
    """The training tokens a run uses: all of them, or the first ``train_tokens``; there must be
    room for at least one window of ``block_size + 1`` tokens."""
    if train_tokens is not None:
        if train_tokens > len(train_data):
            raise ValueError(
                f"train_tokens must be at most the {len(train_data):,} tokens of the training "
                f"split, got {train_tokens:,}"
            )
        train_data = train_data[:train_tokens]
    if len(train_data) <= block_size:
        raise ValueError(
            f"train_tokens must exceed block_size={block_size} (one window and its target), "
            f"got {len(train_data)}"
        )
    return train_data


def mask_tokens(x: torch.Tensor, rate: float, vocab: int, generator: torch.Generator):
    """``x`` with each token replaced, with probability ``rate``, by a uniform random token (which
    may by chance be the same one). Draws on the CPU from ``generator`` (reproducible, resumable)
    whatever the device of ``x``."""
    if rate == 0.0:
        return x
    shape = tuple(x.shape)
    hit = torch.rand(shape, generator=generator) < rate
    noise = torch.randint(vocab, shape, generator=generator)
    return torch.where(hit.to(x.device), noise.to(x.device), x)
