"""dropoutlib: dropout for language models, from Bernoulli masks to LearnedDropout.

The library of the course "Dropout in LLMs". Functions live in :mod:`dropoutlib.functional`,
modules are exported here.
"""

from dropoutlib._base import DropoutModule, check_p
from dropoutlib.data import CharTokenizer, corpus_sha256, get_batch, load_corpus, train_val_split
from dropoutlib.layers import (
    AlphaDropout,
    ConcreteDropout,
    DropConnectLinear,
    DropHead,
    Dropout,
    DropPath,
    EmbeddingDropout,
    GaussianDropout,
    LayerDrop,
    LockedDropout,
    SpatialDropout,
    Standout,
    TokenTypeDropout,
)
from dropoutlib.learned import LearnedDropout
from dropoutlib.model import BabyGPT, GPTConfig
from dropoutlib.schedules import (
    ConstantRate,
    CosineDecay,
    CurriculumDropout,
    DropoutScheduler,
    EarlyDropout,
    LateDropout,
    LinearDecay,
    interpolate_rates,
    layerwise_rates,
    set_dropout_p,
    set_layerwise_p,
)
from dropoutlib.seeded import SeededDropout
from dropoutlib.sites import DropoutSite, dropout_sites
from dropoutlib.train import RunResult, TrainConfig
from dropoutlib.uncertainty import (
    MCPrediction,
    calibration,
    mc_curve,
    mc_dropout,
    mc_predict,
    r_drop_loss,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # shared validation and the base of the modules with a rate p
    "DropoutModule",
    "check_p",
    # the variants (functions in dropoutlib.functional)
    "Dropout",
    "DropConnectLinear",
    "SpatialDropout",
    "LockedDropout",
    "EmbeddingDropout",
    "TokenTypeDropout",
    "DropPath",
    "DropHead",
    "GaussianDropout",
    "AlphaDropout",
    "LayerDrop",
    "ConcreteDropout",
    "Standout",
    "SeededDropout",
    "LearnedDropout",
    # schedules over training and depth
    "ConstantRate",
    "LinearDecay",
    "CosineDecay",
    "EarlyDropout",
    "LateDropout",
    "CurriculumDropout",
    "layerwise_rates",
    "interpolate_rates",
    "set_layerwise_p",
    # every dropout site of a model (modules, float rates, config fields) and setting them
    "dropout_sites",
    "DropoutSite",
    "set_dropout_p",
    "DropoutScheduler",
    # uncertainty
    "mc_dropout",
    "mc_predict",
    "MCPrediction",
    "mc_curve",
    "calibration",
    "r_drop_loss",
    # babyGPT, corpora, training
    "BabyGPT",
    "GPTConfig",
    "CharTokenizer",
    "load_corpus",
    "corpus_sha256",
    "train_val_split",
    "get_batch",
    "TrainConfig",
    "RunResult",
]
