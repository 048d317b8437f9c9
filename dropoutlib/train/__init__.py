"""Training babyGPT: the loop, evaluation, checkpoints, the run cache and data parallelism.

One room per idea:

* :mod:`~dropoutlib.train.config`: :class:`TrainConfig`, what a run is (presets, validation,
  the training features: ``train_tokens``, ``label_smoothing``, ``grad_clip``,
  ``dropout_schedule``, ``r_drop_alpha``, ``token_mask_rate``, ``init_from``, ``lora``);
* :mod:`~dropoutlib.train.loop`: :func:`train`, set up then a short loop of named steps;
* :mod:`~dropoutlib.train.objective`: the training loss and its regularisers;
* :mod:`~dropoutlib.train.batches`: corpus tensors, the training subset, input-token noise;
* :mod:`~dropoutlib.train.evaluate`: :func:`estimate_loss` in eval mode, and
  :func:`loss_on_corpus`, a finished run's loss on another corpus's split;
* :mod:`~dropoutlib.train.store`: the run cache (:func:`run_key`, :class:`RunResult`,
  :func:`load_run`, :data:`~dropoutlib.train.store.RESULTS_VERSION`);
* :mod:`~dropoutlib.train.checkpoint`: atomic checkpoints with every RNG state (exact resume);
* :mod:`~dropoutlib.train.finetune`: starting from a parent run, LoRA through PEFT;
* :mod:`~dropoutlib.train.devices` and :mod:`~dropoutlib.train.distributed`: device, AMP, DDP;
* :mod:`~dropoutlib.train.golden`: fixed smoke runs that guard the cache against code changes.

Typical use::

    from dropoutlib.model import GPTConfig
    from dropoutlib.train import TrainConfig, train, vocab_size

    result = train(GPTConfig.v10(vocab_size("song_ci")), TrainConfig.v10(), "song_ci")
    result.final  # {'step': 5000, 'epoch': ..., 'train_loss': ..., 'val_loss': ...}
"""

from dropoutlib.train.batches import vocab_size
from dropoutlib.train.config import DECAY_RULES, TrainConfig
from dropoutlib.train.devices import amp_settings, resolve_device
from dropoutlib.train.evaluate import estimate_loss, loss_on_corpus
from dropoutlib.train.loop import lookup, optimizer_param_groups, stream_seed, train
from dropoutlib.train.store import (
    RESULTS_VERSION,
    CacheWarning,
    RunResult,
    cache_dir,
    find_run,
    load_run,
    run_key,
)

__all__ = [
    "DECAY_RULES",
    "RESULTS_VERSION",
    "CacheWarning",
    "RunResult",
    "TrainConfig",
    "amp_settings",
    "cache_dir",
    "estimate_loss",
    "find_run",
    "load_run",
    "lookup",
    "loss_on_corpus",
    "optimizer_param_groups",
    "resolve_device",
    "run_key",
    "stream_seed",
    "train",
    "vocab_size",
]
