"""Chapter 10, review: the self-check quiz, the "find the dropout bugs" model, and their checkers.

* :func:`check_quiz` grades a dict of answers ``{"q01": 1.25, "q02": ..., "q14": "b", ...}``:
  numbers within a tolerance, multiple-choice letters by hash (the letters are not written
  here in clear), one line per question, and a hint naming the chapter to reread. Answers that
  the library or transformers define are computed live: the number of ``nn.Dropout`` modules
  of babyGPT v10, ``LlamaConfig().attention_dropout``, a stochastic-depth rate from
  :func:`~dropoutlib.schedules.interpolate_rates`, R-Drop's term from
  :func:`~dropoutlib.uncertainty.r_drop_loss`.
* :class:`BuggyGPT` is a one-block GPT with four planted dropout bugs, one per site (the sites
  of GPT-2: embeddings, attention weights, attention output before the residual add,
  feed-forward output). :func:`check_dropout_bugs` takes the reader's fixed class and tests,
  site by site, what correct dropout does: evaluation is deterministic and does not depend on
  the rate, training drops and keeps the mean (``E[y] = x``), and
  :func:`~dropoutlib.sites.set_dropout_p` can switch the site off and on.
* :func:`config_defaults` reads the drop rates that transformers' and PEFT's config classes
  default to, in the installed versions.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import numbers
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.checks.core import CheckFailed, Term, Z, add_hints, call, fn_name, run_report

__all__ = [
    "BuggyGPT",
    "QUIZ",
    "SITES",
    "check_dropout_bugs",
    "check_quiz",
    "config_defaults",
    "quiz_expected",
    "show_source",
]

# -----------------------------------------------------------------------------------------------
# The bug hunt


class BuggyGPT(nn.Module):
    """A one-block GPT whose dropout has four bugs; find and fix them (chapter 10).

    Dropout at the four sites of GPT-2: the token + position embedding, the attention weights
    (inside ``scaled_dot_product_attention``), the attention output before the residual add, and
    the feed-forward output before the residual add. Each site has its own rate.
    """

    def __init__(
        self,
        vocab_size: int = 32,
        block_size: int = 16,
        n_embd: int = 32,
        n_head: int = 4,
        emb_dropout: float = 0.1,
        attn_dropout: float = 0.1,
        resid_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
    ):
        super().__init__()
        self.n_head = n_head
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.emb_dropout = emb_dropout
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.resid_keep = 1.0 - resid_dropout
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)
        self.ffn_dropout = nn.Dropout(ffn_dropout)
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = F.dropout(self.tok_emb(idx) + self.pos_emb(pos), self.emb_dropout)
        q, k, v = self.c_attn(self.ln_1(x)).split(x.size(-1), dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout.p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, -1)
        x = x + F.dropout(self.c_proj(y), 1.0 - self.resid_keep, self.training)
        h = F.gelu(self.c_fc(self.ln_2(x)))
        x = x + self.ffn_dropout(self.mlp_proj(h)) / (1.0 - self.ffn_dropout.p)
        return self.lm_head(self.ln_f(x))


#: The sites, in forward order: (key, constructor argument). The checker sets one site's rate at a
#: time, so a failure names the site.
SITES = (
    ("emb", "emb_dropout"),
    ("attn", "attn_dropout"),
    ("resid", "resid_dropout"),
    ("ffn", "ffn_dropout"),
)
# Where the checker reads each site's output: the input of these modules (forward pre-hooks).
_TAPS = ("ln_1", "c_proj", "ln_2", "ln_f")
_SIZES = dict(vocab_size=32, block_size=16, n_embd=32, n_head=4)
# The rate under test: not 0.5, where a keep probability passed as a rate would look right.
_P = 0.25


def show_source(obj):
    """``obj``'s source as a highlighted code block in a notebook (plain text elsewhere)."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - IPython comes with every notebook
        return source
    return Code(source, language="python")


def _rates(site: str | None = None, p: float = _P) -> dict[str, float]:
    """Constructor rates: ``p`` at ``site`` (every site when None... of the given site only)."""
    return {arg: (p if key == site else 0.0) for key, arg in SITES}


def _build(cls, rates: dict[str, float]):
    torch.manual_seed(1234)  # the same weights for every rate: the rates hold no parameters
    model = call(cls, **_SIZES, **rates)
    if not isinstance(model, nn.Module):
        raise CheckFailed("bug_not_module", type=type(model).__name__)
    return model


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.randint(_SIZES["vocab_size"], (4, _SIZES["block_size"]), generator=g)


def _logits(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = call(model, idx)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed("not_tensor", type=type(out).__name__)
    return out


def _taps(model: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inputs of ln_1, c_proj, ln_2 and ln_f in one forward pass."""
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in _TAPS:
        module = getattr(model, name, None)
        if not isinstance(module, nn.Module):
            raise CheckFailed("bug_names", missing=name, names=", ".join(_TAPS))

        def hook(module, args, name=name):
            seen[name] = args[0].detach().clone()

        handles.append(module.register_forward_pre_hook(hook))
    try:
        _logits(model, idx)
    finally:
        for h in handles:
            h.remove()
    missing = [name for name in _TAPS if name not in seen]
    if missing:
        raise CheckFailed("bug_names", missing=missing[0], names=", ".join(_TAPS))
    return seen


def _branch(site: str, taps: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the site's dropout acts on, as seen downstream of it."""
    if site == "emb":
        return taps["ln_1"]  # the embedding after dropout
    if site == "attn":
        return taps["c_proj"]  # the attention output: (dropped weights) @ V
    if site == "resid":
        return taps["ln_2"] - taps["ln_1"]  # the residual branch of attention
    return taps["ln_f"] - taps["ln_2"]  # the residual branch of the feed-forward network


def _site_checks(cls, site: str, arg: str, n_passes: int = 64):
    """Every property of one site, in order; raises CheckFailed at the first that fails."""
    from dropoutlib.sites import dropout_sites, set_dropout_p

    name = Term(f"site_{site}")
    fix = Term(f"fix_{site}")
    idx = _batch()
    model = _build(cls, _rates(site))
    zero = _build(cls, _rates(None))
    try:
        zero.load_state_dict(model.state_dict())
    except Exception as exc:  # parameters that depend on the rate
        raise CheckFailed("raised", exc=f"{type(exc).__name__}: {exc}") from None

    # Evaluation: deterministic, and the same function whatever the rate.
    model.eval()
    zero.eval()
    first, second = _logits(model, idx), _logits(model, idx)
    if not torch.equal(first, second):
        raise CheckFailed("bug_eval_random", site=name, fix=fix)
    plain = _logits(zero, idx)
    err = (first - plain).abs().max().item()
    if not err <= 1e-5 * (1.0 + plain.abs().max().item()):
        raise CheckFailed("bug_eval_scaled", site=name, p=_P, err=err)

    # Training: fresh masks, and the mean of the dropped branch is the branch without dropout.
    model.train()
    zero.train()
    if torch.equal(_logits(model, idx), _logits(model, idx)):
        raise CheckFailed("bug_no_drop", site=name, p=_P)
    target = _branch(site, _taps(zero, idx))
    norm = (target * target).sum().item()
    branches = [_branch(site, _taps(model, idx)) for _ in range(n_passes)]
    if site != "attn":  # elementwise sites: the share of exact zeros is the rate
        zeros = torch.tensor([(b == 0).float().mean().item() for b in branches])
        rate = zeros.mean().item()
        tol = Z * zeros.std().item() / math.sqrt(n_passes) + 1e-3
        if not abs(rate - _P) <= tol:
            raise CheckFailed("bug_rate", site=name, p=_P, rate=rate, tol=tol)
    slopes = torch.tensor([(b * target).sum().item() / norm for b in branches])
    ratio = slopes.mean().item()
    tol = Z * slopes.std().item() / math.sqrt(n_passes) + 1e-3
    if not abs(ratio - 1.0) <= tol:
        raise CheckFailed("bug_mean", site=name, p=_P, ratio=ratio, tol=tol)

    # Rate changes reach the site: off with set_dropout_p(model, 0.0) ...
    set_dropout_p(model, 0.0)
    if not torch.equal(_logits(model, idx), _logits(model, idx)):
        raise CheckFailed("bug_set_zero", site=name)
    # ... and on again in a model built with rate 0 at every site.
    names = [s.name for s in dropout_sites(_build(cls, _rates(site))) if s.p > 0]
    off = _build(cls, _rates(None)).train()
    try:
        set_dropout_p(off, _P, name=names)
    except ValueError:
        raise CheckFailed("bug_set_on", site=name, p=_P, names=", ".join(names)) from None
    if torch.equal(_logits(off, idx), _logits(off, idx)):
        raise CheckFailed("bug_set_on", site=name, p=_P, names=", ".join(names))


def dropout_bug_checks(cls) -> list:
    """The items of :func:`check_dropout_bugs`: (label, check) for the build and each site."""

    def builds():
        model = _build(cls, _rates("emb", 0.1))
        out = _logits(model, _batch())
        want = (4, _SIZES["block_size"], _SIZES["vocab_size"])
        if tuple(out.shape) != want:
            raise CheckFailed("bug_build", want=want, got=tuple(out.shape))

    items = [(Term("item_build"), builds)]
    for site, arg in SITES:
        items.append(
            (Term(f"site_{site}"), lambda site=site, arg=arg: _site_checks(cls, site, arg))
        )
    return items


def check_dropout_bugs(cls, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check the reader's fix of :class:`BuggyGPT`: ``cls`` has BuggyGPT's constructor and names.

    One line per site (embeddings, attention weights, attention output, feed-forward output),
    each at rate 0.5 with the other sites at 0: two forwards in evaluation mode are equal and
    equal to the model's output with every rate 0 (no rescaling in evaluation); two forwards in
    training mode differ, and the mean of the site's output over many passes equals its output
    without dropout (scaled once by 1/(1-p)); ``set_dropout_p(model, 0.0)`` makes training
    deterministic, and ``set_dropout_p`` gives a model built with rate 0 its dropout back.
    Prints the verdict and a hint per failed site in ``lang``; returns True when all hold.
    """
    return run_report(
        fn_name(cls), dropout_bug_checks(cls), lang, seed, verbose, checker="dropout_bugs", gate=1
    )


# -----------------------------------------------------------------------------------------------
# The quiz

# (key, kind, absolute tolerance) in the order of the chapter's list. "choice" answers are letters.
QUIZ = (
    ("q01", "number", 1e-3),  # the factor 1/(1-p) at p = 0.2
    ("q02", "number", 1e-3),  # Var[y|x] = x^2 p/(1-p) at p = 0.2
    ("q03", "number", 0.0),  # nn.Dropout modules in babyGPT v10
    ("q04", "number", 0.0),  # LlamaConfig().attention_dropout
    ("q05", "number", 1e-3),  # a rate copied at __init__ (code reading)
    ("q06", "number", 0.02),  # F.dropout after model.eval() (code reading)
    ("q07", "number", 1e-3),  # dropout scaled twice (code reading)
    ("q08", "number", 1e-3),  # DropHead's rescaling
    ("q09", "number", 1e-3),  # LayerDrop: expected blocks run
    ("q10", "number", 1e-4),  # stochastic depth's linear rule
    ("q11", "number", 1e-4),  # early dropout
    ("q12", "number", 1e-3),  # Gaussian dropout's standard deviation
    ("q13", "number", 1e-3),  # R-Drop's consistency term
    ("q14", "choice", 0.0),  # PEFT's placement of lora_dropout
    ("q15", "choice", 0.0),  # babyGPT v10's three sites
    ("q16", "choice", 0.0),  # dropout in single-epoch pre-training
    ("q17", "choice", 0.0),  # seeded dropout's saved state
    ("q18", "choice", 0.0),  # LearnedDropout in evaluation
    ("q19", "choice", 0.0),  # MC dropout
    ("q20", "choice", 0.0),  # DropPath
)
_KIND = {key: kind for key, kind, _ in QUIZ}
_TOL = {key: tol for key, _, tol in QUIZ}
_SALT = "dropoutlib/review"
# sha256(f"{_SALT}:{key}:{letter}") of the right letter: the answers are checkable, not readable.
_CHOICE_SHA256 = {
    "q14": "83cf0c962675253cd49aecbe175210a50f4f9e8720e950bc447e6e66928e8f3f",
    "q15": "8e7cbbc57e17b43574e8fb1f25604a434ca028f4354c77b192625a7dff1dce09",
    "q16": "07f0cfbf92f84036498a2a93347c117579ca4d4bdefe0f0859d15ff49fd560f5",
    "q17": "bc6f248842034df4be1ab2b82ad4e04adc9ddade39cfcc553575a44a986f61a5",
    "q18": "fcd7027194858b1b8138f644bb08935403b88d9c5b6f1da671c7f930df6db631",
    "q19": "6b2c68c6ee856be0840a6fdd43ff181cb5d80ba36ea80281d832ca3b11b3d24b",
    "q20": "cf969ca564f1ecc4abbf1b1c9f3d22c225f257f1753f43d1c339aca55bda7ed8",
}


def _choice_hash(key: str, letter: str) -> str:
    return hashlib.sha256(f"{_SALT}:{key}:{letter}".encode()).hexdigest()


def _llama_attention_dropout() -> float:
    """``LlamaConfig().attention_dropout`` in the installed transformers (0.0 in 5.24 when
    transformers is missing, as on a bare install)."""
    try:
        from transformers import LlamaConfig
    except ImportError:
        return 0.0
    return float(LlamaConfig().attention_dropout)


def _v10_dropout_modules() -> int:
    from dropoutlib.model import BabyGPT, GPTConfig

    with torch.random.fork_rng(devices=[]):
        model = BabyGPT(GPTConfig.v10(vocab_size=65))
    return sum(isinstance(m, nn.Dropout) for m in model.modules())


def quiz_expected(key: str) -> float:
    """The expected number of numeric question ``key``, computed from its definition."""
    from dropoutlib.schedules import EarlyDropout, interpolate_rates
    from dropoutlib.uncertainty import r_drop_loss

    p = 0.2
    values = {
        "q01": lambda: 1.0 / (1.0 - p),
        "q02": lambda: p / (1.0 - p),
        "q03": _v10_dropout_modules,
        "q04": _llama_attention_dropout,
        "q05": lambda: 0.1,  # the rate copied at __init__; the later config change is not seen
        "q06": lambda: 0.3,  # F.dropout's training=True default ignores model.eval()
        "q07": lambda: 1.0 / (1.0 - 0.5),  # E[drop(x)] = x, then divided by (1 - p) again
        "q08": lambda: 8 / 3,  # H / (heads kept)
        "q09": lambda: 12 * (1.0 - 0.2),
        "q10": lambda: interpolate_rates(12, 0.0, 0.1)[6],
        "q11": lambda: EarlyDropout(0.1, 0.25, "linear")(100, 1000),
        "q12": lambda: math.sqrt(p / (1.0 - p)),
        "q13": lambda: r_drop_loss(
            torch.tensor([0.5, 0.5]).log(), torch.tensor([0.8, 0.2]).log(), alpha=1.0
        ).item(),
    }
    if key not in values:
        raise ValueError(f"key must be a numeric question {sorted(values)}, got {key!r}")
    return float(values[key]())


def _normalise_key(key) -> str | None:
    """``"q01"``, ``"q1"``, ``"Q01"`` and ``1`` all name question 1."""
    if isinstance(key, bool):
        return None
    if isinstance(key, numbers.Integral):
        n = int(key)
    elif isinstance(key, str) and key.strip().lower().lstrip("q").isdigit():
        n = int(key.strip().lower().lstrip("q"))
    else:
        return None
    return f"q{n:02d}"


def _as_number(value) -> float:
    if isinstance(value, bool):
        raise CheckFailed("quiz_not_number", got=repr(value))
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CheckFailed("quiz_not_number", got=repr(value)) from None
    if not math.isfinite(number):
        raise CheckFailed("quiz_not_number", got=repr(value))
    return number


def _as_letter(value) -> str:
    letter = value.strip().strip("()[].").strip().lower() if isinstance(value, str) else None
    if letter not in ("a", "b", "c", "d"):
        raise CheckFailed("quiz_not_choice", got=repr(value))
    return letter


def _question_check(key: str, answers: dict):
    def check():
        value = answers.get(key)
        if value is None:
            raise CheckFailed("unanswered")
        if _KIND[key] == "choice":
            if _choice_hash(key, _as_letter(value)) != _CHOICE_SHA256[key]:
                raise CheckFailed(f"quiz_{key}")
            return
        number = _as_number(value)
        expected = quiz_expected(key)
        tol = max(_TOL[key], 1e-6 * abs(expected))
        if not abs(number - expected) <= tol:
            raise CheckFailed(f"quiz_{key}")

    return check


def quiz_checks(answers) -> list:
    """The items of :func:`check_quiz`: (question key, check) for every question."""
    if not isinstance(answers, Mapping):

        def wrong_type():
            raise CheckFailed("quiz_not_dict", type=type(answers).__name__)

        return [(key, wrong_type) for key, _, _ in QUIZ]
    normalised = {}
    for key, value in answers.items():
        k = _normalise_key(key)
        if k is not None and (k not in normalised or normalised[k] is None):
            normalised[k] = value
    return [(key, _question_check(key, normalised)) for key, _, _ in QUIZ]


def check_quiz(answers, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Grade the self-check quiz of chapter 10: ``answers`` maps "q01".."q20" to a number or a
    letter ("a".."d"). Prints one line per question (a hint naming the chapter to reread on a
    wrong answer) in ``lang``; returns True when every answer is right."""
    return run_report("quiz", quiz_checks(answers), lang, seed, verbose, checker="quiz")


# -----------------------------------------------------------------------------------------------
# Drop rates that real configs default to


def config_defaults() -> list[tuple[str, str, str, float]]:
    """(library, config class, field, default) for the drop rates of common config classes, read
    from the installed transformers and peft (a library that is not installed is left out)."""
    rows = []
    try:
        import transformers
    except ImportError:
        transformers = None
    if transformers is not None:
        fields = {
            "GPT2Config": ("embd_pdrop", "attn_pdrop", "resid_pdrop"),
            "BertConfig": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
            "T5Config": ("dropout_rate",),
            "OPTConfig": ("dropout", "attention_dropout", "layerdrop"),
            "GPTNeoXConfig": ("attention_dropout", "hidden_dropout"),
            "LlamaConfig": ("attention_dropout",),
            "MistralConfig": ("attention_dropout",),
            "Qwen2Config": ("attention_dropout",),
        }
        for cls_name, names in fields.items():
            cls = getattr(transformers, cls_name, None)
            if cls is None:
                continue
            config = cls()
            for field in names:
                if hasattr(config, field):  # a field a later version dropped is left out
                    rows.append(("transformers", cls_name, field, getattr(config, field)))
    try:
        import peft
    except ImportError:
        peft = None
    if peft is not None:
        rows.append(("peft", "LoraConfig", "lora_dropout", peft.LoraConfig().lora_dropout))
    return rows


# -----------------------------------------------------------------------------------------------
# Hints

_HINTS = {
    "en": {
        "item_build": "builds and runs",
        "site_emb": "embeddings",
        "site_attn": "attention weights",
        "site_resid": "attention output (residual)",
        "site_ffn": "feed-forward output",
        "fix_emb": "F.dropout(x, p) defaults to training=True: pass training=self.training "
        "(chapter 1, section 1.4)",
        "fix_attn": "scaled_dot_product_attention drops whenever dropout_p > 0: pass "
        "dropout_p=p if self.training else 0.0 (chapter 1, section 1.4)",
        "fix_resid": "use an nn.Dropout module, or F.dropout(..., training=self.training) "
        "(chapter 1, section 1.4)",
        "fix_ffn": "use an nn.Dropout module, or F.dropout(..., training=self.training) "
        "(chapter 1, section 1.4)",
        "bug_build": "the model must return logits of shape {want} for a batch of 4 sequences "
        "of 16 tokens, got {got}",
        "bug_not_module": "calling your class must build an nn.Module, got {type}",
        "bug_names": "keep BuggyGPT's module names: the checker reads the inputs of {names} "
        "({missing} is missing or never called)",
        "bug_eval_random": "in evaluation mode two forward passes differ: the dropout at the "
        "{site} still drops after model.eval(); {fix}",
        "bug_eval_scaled": "in evaluation mode the output depends on the rate at the {site} "
        "(p = {p} and p = 0 differ by {err:.3g}): evaluation must be the identity; nn.Dropout and "
        "F.dropout already scale by 1/(1-p) in training, so do not rescale again (chapter 1, "
        "section 1.3)",
        "bug_no_drop": "in training mode the dropout at the {site} never drops (two passes at "
        "p = {p} are equal): keep it on in training mode",
        "bug_rate": "in training mode {rate:.3f} of the output at the {site} is zero at p = "
        "{p} (expected p ± {tol:.3f}): drop with the rate the model was given (a keep "
        "probability passed as p drops 1 - p; a rate fixed in __init__ ignores the argument; "
        "dropout on the residual stream instead of the branch zeroes nothing here)",
        "bug_mean": "in training mode the output at the {site} is on average {ratio:.3f} times "
        "its value without dropout (expected 1 ± {tol:.3f}): inverted dropout scales the kept "
        "units by 1/(1-p) exactly once (chapter 1, section 1.3)",
        "bug_set_zero": "set_dropout_p(model, 0.0) left the dropout at the {site} on: the rate "
        "that "
        "forward uses is a copy made in __init__ (a keep probability, say) that no tool can "
        "find; keep it where dropout_sites looks: an nn.Dropout module, or a float named like "
        "a rate, read at every forward (chapter 2 and chapter 6)",
        "bug_set_on": "a model built with rate 0 at the {site} does not drop there after "
        "set_dropout_p(model, {p}) (sites: {names}): build the site whatever its rate, so a "
        "schedule can switch it on later (chapter 6)",
        "quiz_not_dict": 'answers must be a dict {{"q01": ..., "q02": ...}}, got {type}',
        "quiz_not_number": "this question wants a number, got {got}",
        "quiz_not_choice": 'this question wants one letter, "a" to "d", got {got}',
        "quiz_q01": "reread chapter 1, section 1.3: the factor that keeps E[y] = x",
        "quiz_q02": "reread chapter 1, section 1.3 and exercise 1: the variance of inverted "
        "dropout",
        "quiz_q03": "reread chapter 1, section 1.2: count the modules, not the kinds of site "
        "(dropout_sites(model) counts them for you)",
        "quiz_q04": "reread chapter 2 on Llama's attention: read the default from "
        "transformers.LlamaConfig() itself",
        "quiz_q05": "reread chapter 2 on float rates: when is the rate read, at __init__ or at "
        "every forward?",
        "quiz_q06": "reread chapter 1, section 1.4 (pitfall 1): does F.dropout know the mode?",
        "quiz_q07": "reread chapter 1, section 1.3: how many times is the output divided by (1-p)?",
        "quiz_q08": "reread chapter 4 on DropHead: how are the kept heads rescaled?",
        "quiz_q09": "reread chapter 4 on LayerDrop: each block is skipped with probability p",
        "quiz_q10": "reread chapter 6 on rates over depth (interpolate_rates, timm's linspace)",
        "quiz_q11": 'reread chapter 6 on early dropout (EarlyDropout with schedule="linear")',
        "quiz_q12": "reread chapter 5 on Gaussian dropout: which variance matches Bernoulli "
        "dropout?",
        "quiz_q13": "reread chapter 5 on R-Drop: the symmetric KL between the two passes, "
        "halved (dropoutlib.uncertainty.r_drop_loss)",
        "quiz_q14": "reread chapter 7 on LoRA: which tensor does PEFT's lora_dropout touch?",
        "quiz_q15": "reread chapter 1, section 1.2: where are the three nn.Dropout sites of a "
        "block?",
        "quiz_q16": "reread chapter 3 (one epoch vs many) and chapter 9 (why large LLMs use 0)",
        "quiz_q17": "reread chapter 9 on memory-free seeded dropout",
        "quiz_q18": "reread chapter 8 on LearnedDropout in evaluation mode",
        "quiz_q19": "reread chapter 5 on MC dropout",
        "quiz_q20": "reread chapter 4 on DropPath: per sample or per batch, elements or the "
        "whole branch?",
    },
    "ru": {
        "item_build": "создаётся и работает",
        "site_emb": "эмбеддинги",
        "site_attn": "веса внимания",
        "site_resid": "выход внимания (остаточная связь)",
        "site_ffn": "выход сети прямого распространения",
        "fix_emb": "у F.dropout(x, p) по умолчанию training=True: передайте "
        "training=self.training (глава 1, раздел 1.4)",
        "fix_attn": "scaled_dot_product_attention отключает веса всегда, когда dropout_p > 0: "
        "передайте dropout_p=p if self.training else 0.0 (глава 1, раздел 1.4)",
        "fix_resid": "используйте модуль nn.Dropout или F.dropout(..., training=self.training) "
        "(глава 1, раздел 1.4)",
        "fix_ffn": "используйте модуль nn.Dropout или F.dropout(..., training=self.training) "
        "(глава 1, раздел 1.4)",
        "bug_build": "для батча из 4 последовательностей по 16 токенов модель должна вернуть "
        "логиты формы {want}, а вернула {got}",
        "bug_not_module": "вызов вашего класса должен создать nn.Module, а создал {type}",
        "bug_names": "сохраните имена модулей BuggyGPT: функция-проверка читает входы {names} "
        "({missing} нет или он не вызывается)",
        "bug_eval_random": "в режиме оценки два прямых прохода дают разные выходы: dropout "
        "на участке «{site}» продолжает работать после model.eval(); {fix}",
        "bug_eval_scaled": "в режиме оценки выход зависит от доли отключения на участке "
        "«{site}» (p = {p} и p = 0 расходятся на {err:.3g}): при оценке dropout должен быть "
        "тождественным; nn.Dropout и F.dropout уже делят на (1-p) при обучении, второй раз "
        "масштабировать не нужно (глава 1, раздел 1.3)",
        "bug_no_drop": "в режиме обучения dropout на участке «{site}» ничего не отключает (два "
        "прохода при p = {p} совпали): при обучении он должен работать",
        "bug_rate": "в режиме обучения на участке «{site}» нулей {rate:.3f} при p = {p} "
        "(ожидается p ± {tol:.3f}): отключайте элементы с той долей, которую получила модель "
        "(вероятность сохранения вместо p отключает 1 - p; доля, заданная в __init__ числом, "
        "не слушает аргумент; dropout на остаточном потоке вместо ветви не даёт здесь нулей)",
        "bug_mean": "в режиме обучения выход участка «{site}» в среднем в {ratio:.3f} раза "
        "больше, чем без dropout (ожидается 1 ± {tol:.3f}): инвертированный dropout делит "
        "сохранённые элементы на (1-p) ровно один раз (глава 1, раздел 1.3)",
        "bug_set_zero": "после set_dropout_p(model, 0.0) dropout на участке «{site}» "
        "по-прежнему работает: forward берёт долю отключения из копии, сделанной в __init__ "
        "(например, из вероятности сохранения), а её не найдёт ни один инструмент; храните "
        "долю там, где её ищет dropout_sites: в модуле nn.Dropout или в числовом атрибуте с "
        "именем доли отключения, который читается при каждом проходе (главы 2 и 6)",
        "bug_set_on": "модель, созданная с нулевой долей отключения на участке «{site}», не "
        "начинает отключать элементы после set_dropout_p(model, {p}) (участки: {names}): "
        "создавайте участок при любой доле, чтобы расписание могло включить его позже (глава 6)",
        "quiz_not_dict": 'ответы должны быть словарём {{"q01": ..., "q02": ...}}, а получен {type}',
        "quiz_not_number": "в этом вопросе нужен ответ-число, а получено {got}",
        "quiz_not_choice": 'в этом вопросе нужна одна буква от "a" до "d", а получено {got}',
        "quiz_q01": "перечитайте раздел 1.3 главы 1: множитель, который сохраняет E[y] = x",
        "quiz_q02": "перечитайте раздел 1.3 главы 1 и упражнение 1: дисперсия "
        "инвертированного dropout",
        "quiz_q03": "перечитайте раздел 1.2 главы 1: считайте модули, а не виды участков "
        "(dropout_sites(model) посчитает их за вас)",
        "quiz_q04": "перечитайте главу 2 о внимании Llama: возьмите значение по умолчанию "
        "прямо из transformers.LlamaConfig()",
        "quiz_q05": "перечитайте главу 2 о числовых долях отключения: когда читается доля, в "
        "__init__ или при каждом проходе?",
        "quiz_q06": "перечитайте раздел 1.4 главы 1 (ловушка 1): знает ли F.dropout о режиме?",
        "quiz_q07": "перечитайте раздел 1.3 главы 1: сколько раз выход делится на (1-p)?",
        "quiz_q08": "перечитайте главу 4 о DropHead: как масштабируются сохранённые головы?",
        "quiz_q09": "перечитайте главу 4 о LayerDrop: каждый блок пропускается с вероятностью p",
        "quiz_q10": "перечитайте главу 6 о долях по глубине (interpolate_rates, linspace в timm)",
        "quiz_q11": 'перечитайте главу 6 о раннем dropout (EarlyDropout с schedule="linear")',
        "quiz_q12": "перечитайте главу 5 о гауссовском dropout: какая дисперсия совпадает с "
        "бернуллиевским dropout?",
        "quiz_q13": "перечитайте главу 5 о R-Drop: симметричная KL-дивергенция двух проходов, "
        "делённая пополам (dropoutlib.uncertainty.r_drop_loss)",
        "quiz_q14": "перечитайте главу 7 о LoRA: к какому тензору применяется lora_dropout в PEFT?",
        "quiz_q15": "перечитайте раздел 1.2 главы 1: где в блоке три места dropout (nn.Dropout)?",
        "quiz_q16": "перечитайте главу 3 (одна эпоха или много) и главу 9 (почему у больших "
        "LLM доля 0)",
        "quiz_q17": "перечитайте главу 9 о dropout с seed, которому не нужна память под маску",
        "quiz_q18": "перечитайте главу 8 о LearnedDropout в режиме оценки",
        "quiz_q19": "перечитайте главу 5 о MC dropout",
        "quiz_q20": "перечитайте главу 4 о DropPath: для примера или для батча, элементы или "
        "вся ветвь?",
    },
    "zh": {
        "item_build": "能构建并运行",
        "site_emb": "嵌入",
        "site_attn": "注意力权重",
        "site_resid": "注意力输出（残差）",
        "site_ffn": "前馈网络输出",
        "fix_emb": "F.dropout(x, p) 默认 training=True：请传入 training=self.training"
        "（第 1 章 1.4 节）",
        "fix_attn": "只要 dropout_p > 0，scaled_dot_product_attention 就会暂退：请传入 "
        "dropout_p=p if self.training else 0.0（第 1 章 1.4 节）",
        "fix_resid": "请用 nn.Dropout 模块，或 F.dropout(..., training=self.training)"
        "（第 1 章 1.4 节）",
        "fix_ffn": "请用 nn.Dropout 模块，或 F.dropout(..., training=self.training)"
        "（第 1 章 1.4 节）",
        "bug_build": "输入 4 条、每条 16 个词元的批量，模型应返回形状为 {want} 的 logits，"
        "实际是 {got}",
        "bug_not_module": "调用你的类应当构建一个 nn.Module，实际得到 {type}",
        "bug_names": "请保留 BuggyGPT 的模块名：检查器读取 {names} 的输入（{missing} 不存在或"
        "没有被调用）",
        "bug_eval_random": "评估模式下两次前向传播结果不同：调用 model.eval() 之后，“{site}”处"
        "的暂退法仍在丢弃；{fix}",
        "bug_eval_scaled": "评估模式下输出随“{site}”处的暂退概率而变（p = {p} 与 p = 0 相差 "
        "{err:.3g}）：评估时暂退法应是恒等映射；nn.Dropout 和 F.dropout 在训练时已经除以 "
        "(1-p)，不要再缩放一次（第 1 章 1.3 节）",
        "bug_no_drop": "训练模式下“{site}”处的暂退法从不丢弃（p = {p} 时两次前向传播相同）："
        "训练时要保持开启",
        "bug_rate": "训练模式下 p = {p} 时，“{site}”处的输出有 {rate:.3f} 为零（应为 "
        "p ± {tol:.3f}）：要按模型收到的暂退概率丢弃（把保留概率当作 p 会丢弃 1 - p；"
        "在 __init__ 里写死的暂退概率不理会参数；作用在残差流而不是分支上的暂退法在这里不产生零）",
        "bug_mean": "训练模式下“{site}”处的输出平均是不用暂退法时的 {ratio:.3f} 倍（应为 "
        "1 ± {tol:.3f}）：倒置暂退法只把保留的单元除以 (1-p) 一次（第 1 章 1.3 节）",
        "bug_set_zero": "set_dropout_p(model, 0.0) 之后“{site}”处的暂退法仍然开着：forward "
        "用的暂退概率是 __init__ 里做的副本（比如保留概率），任何工具都找不到它；请把它放在 "
        "dropout_sites 查找的地方：nn.Dropout 模块，或名字像暂退概率、每次前向传播都读取的"
        "浮点属性（第 2 章和第 6 章）",
        "bug_set_on": "以“{site}”处暂退概率 0 构建的模型，在 set_dropout_p(model, {p}) 之后"
        "仍不丢弃（位置：{names}）：无论暂退概率多大都要构建这个位置，调度才能在之后打开它"
        "（第 6 章）",
        "quiz_not_dict": '答案应是字典 {{"q01": ..., "q02": ...}}，实际得到 {type}',
        "quiz_not_number": "这道题要一个数，实际得到 {got}",
        "quiz_not_choice": '这道题要一个字母（"a" 到 "d"），实际得到 {got}',
        "quiz_q01": "请重读第 1 章 1.3 节：使 E[y] = x 成立的因子",
        "quiz_q02": "请重读第 1 章 1.3 节和练习 1：倒置暂退法的方差",
        "quiz_q03": "请重读第 1 章 1.2 节：数模块，而不是位置的种类"
        "（dropout_sites(model) 可以帮你数）",
        "quiz_q04": "请重读第 2 章关于 Llama 注意力的内容：直接从 transformers.LlamaConfig() "
        "读取默认值",
        "quiz_q05": "请重读第 2 章关于浮点暂退概率的内容：暂退概率是在 __init__ 时读取，还是"
        "每次前向传播时读取？",
        "quiz_q06": "请重读第 1 章 1.4 节（陷阱 1）：F.dropout 知道当前模式吗？",
        "quiz_q07": "请重读第 1 章 1.3 节：输出被 (1-p) 除了几次？",
        "quiz_q08": "请重读第 4 章关于 DropHead 的内容：保留下来的头如何缩放？",
        "quiz_q09": "请重读第 4 章关于 LayerDrop 的内容：每个块以概率 p 被跳过",
        "quiz_q10": "请重读第 6 章关于按深度设置暂退概率的内容（interpolate_rates，timm 的 "
        "linspace）",
        "quiz_q11": '请重读第 6 章关于早期暂退法的内容（schedule="linear" 的 EarlyDropout）',
        "quiz_q12": "请重读第 5 章关于高斯暂退法的内容：什么方差与伯努利暂退法相同？",
        "quiz_q13": "请重读第 5 章关于 R-Drop 的内容：两次前向传播之间对称 KL 散度的一半"
        "（dropoutlib.uncertainty.r_drop_loss）",
        "quiz_q14": "请重读第 7 章关于 LoRA 的内容：PEFT 的 lora_dropout 作用在哪个张量上？",
        "quiz_q15": "请重读第 1 章 1.2 节：一个块里三个 nn.Dropout 的暂退位置在哪里？",
        "quiz_q16": "请重读第 3 章（一个迭代周期还是多个）和第 9 章（大型 LLM 为何用 0）",
        "quiz_q17": "请重读第 9 章关于不占掩码内存的带种子暂退法的内容",
        "quiz_q18": "请重读第 8 章关于 LearnedDropout 在评估模式下行为的内容",
        "quiz_q19": "请重读第 5 章关于蒙特卡洛暂退法的内容",
        "quiz_q20": "请重读第 4 章关于 DropPath 的内容：按样本还是按批量，丢弃单个元素还是"
        "整个分支？",
    },
}
add_hints(_HINTS)
