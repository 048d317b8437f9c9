"""dropoutlib: dropout for language models, from Bernoulli masks to LearnedDropout.

The library of the course "Dropout in LLMs". Functions live in :mod:`dropoutlib.functional`,
modules are exported here.
"""

from dropoutlib._base import DropoutModule, check_p

__version__ = "0.1.0"

__all__ = ["DropoutModule", "check_p", "__version__"]
