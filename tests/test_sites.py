"""dropoutlib.sites: finding every dropout site of a model (modules, float rates, config fields)
and setting it, on torch.nn and dropoutlib models, a nanoGPT attention, babyGPT and tiny randomly
initialised transformers models built offline from their config classes (no weights)."""

import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropoutlib
from dropoutlib import DropoutSite, dropout_sites, layers, set_dropout_p
from dropoutlib.model import BabyGPT, GPTConfig
from dropoutlib.schedules import DropoutScheduler, EarlyDropout, LinearDecay, dropout_modules
from dropoutlib.sites import KINDS, is_rate_name

# ------------------------------------------------------------------------------------------------
# The rule


@pytest.mark.parametrize(
    "name",
    [
        "dropout",  # OPT, T5 attention, nanoGPT, nn.MultiheadAttention, nn.LSTM
        "attention_dropout",  # Llama, Mistral, Qwen2, Gemma, GPT-NeoX, Phi
        "activation_dropout",
        "hidden_dropout",
        "attn_pdrop",
        "resid_pdrop",
        "embd_pdrop",
        "dropout_p",  # MPT's attn_dropout_p too
        "attn_dropout_p",
        "dropout_prob",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "dropout_rate",  # T5Config
        "dropout_ratio",
        "layerdrop",
        "encoder_layerdrop",
        "layer_drop",
        "drop_path_rate",
        "drop_connect_rate",
        "drop_prob",  # transformers' DropPath modules
        "drop_rate",
        "attn_drop",  # X-CLIP keeps a float here
        "fusion_droppath",
    ],
)
def test_rate_names(name):
    assert is_rate_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "p",  # an nn.Dropout's p is found as a module, not by name
        "keep_prob",  # the complement of a rate: setting it to p would be wrong
        "dropout_regularizer",  # ConcreteDropout's weight of its penalty
        "dropout_positions",  # Parakeet / LASR: not a rate
        "dropout1",  # TransformerEncoderLayer's modules
        "dropouts",
        "drop_last",
        "dropout_module",
        "normalize_router_prob_before_dropping",
        "gp_dropout_value",
        "Dropout",
        "attention_dropout_",
        "_",
        "",
        None,
    ],
)
def test_non_rate_names(name):
    assert not is_rate_name(name)


class Attributes(nn.Module):
    """A module whose attributes test the value half of the rule."""

    def __init__(self):
        super().__init__()
        self.dropout = 0.1  # found
        self.attention_dropout = 0  # an int rate (LlamaConfig(attention_dropout=0)): found
        self.layerdrop = 1  # found
        self.token_dropout = True  # ESM's flag: a bool is not a rate
        self.apply_dropout = False  # EfficientNet's flag
        self.classifier_dropout = None  # "use the hidden rate"
        self.hidden_dropout = 1.5  # outside [0, 1]: not a rate
        self.resid_dropout = -0.1
        self.embd_pdrop = float("nan")
        self.attn_pdrop = "0.1"
        self.dropout_rate = [0.1, 0.2]
        self.dropout_prob = torch.tensor(0.1)  # a tensor is state, not a setting
        self.keep_prob = 0.9  # the name rule
        self.dropout_regularizer = 1e-5
        self.register_buffer("drop_prob", torch.tensor(0.1))  # buffers are not looked at
        self.proj = nn.Linear(2, 2)

    @property
    def attn_dropout_p(self):  # properties are not looked at
        return 0.2


def test_value_rule():
    sites = dropout_sites(Attributes())
    assert [(s.name, s.kind, s.p) for s in sites] == [
        ("dropout", "float", 0.1),
        ("attention_dropout", "float", 0.0),
        ("layerdrop", "float", 1.0),
    ]
    assert all(type(s.p) is float for s in sites)


def test_site_record():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.25))
    (site,) = dropout_sites(model)
    assert site == DropoutSite("1", "module", 0.25, model[1], "p")
    assert site.owner is model[1] and site.attr == "p" and site.allow_one
    assert repr(site) == "DropoutSite(name='1', kind='module', p=0.25)"
    with pytest.raises(AttributeError):
        site.p = 0.5  # frozen
    set_dropout_p(model, 0.5)
    assert site.p == 0.25  # a record of the rate when listed
    assert dropout_sites(model)[0].p == 0.5
    assert KINDS == ("module", "float", "config")


# ------------------------------------------------------------------------------------------------
# torch.nn and dropoutlib modules


def test_torch_nn_float_rates():
    mha = nn.MultiheadAttention(8, 2, dropout=0.1)
    assert [(s.name, s.kind, s.p) for s in dropout_sites(mha)] == [("dropout", "float", 0.1)]
    lstm = nn.LSTM(4, 4, num_layers=2, dropout=0.2)
    assert [(s.name, s.kind, s.p) for s in dropout_sites(lstm)] == [("dropout", "float", 0.2)]
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    assert [(s.name, s.kind) for s in dropout_sites(layer)] == [
        ("self_attn.dropout", "float"),
        ("dropout", "module"),
        ("dropout1", "module"),
        ("dropout2", "module"),
    ]
    # the attention weights are dropped through the float: modules alone leave them random
    x = torch.randn(5, 3, 8)
    torch.manual_seed(0)
    for _, m in dropout_modules(layer):
        m.p = 0.0
    layer.train()
    assert not torch.equal(layer(x), layer(x))
    assert set_dropout_p(layer, 0.0, kind="float") == 1
    assert torch.equal(layer(x), layer(x))


def test_dropoutlib_modules_as_sites():
    model = nn.Sequential(
        layers.Dropout(0.1),
        layers.DropPath(0.1),
        layers.DropHead(0.1),
        layers.LayerDrop(0.1, [nn.Linear(8, 8)]),
        layers.ConcreteDropout(0.2),  # learned rate, read-only p: not a site
        layers.Standout(nn.Linear(8, 8)),  # no scalar p
        dropoutlib.LearnedDropout(8, 2),  # no rate at all
    )
    sites = dropout_sites(model)
    assert [(s.name, s.kind) for s in sites] == [
        ("0", "module"),
        ("1", "module"),
        ("2", "module"),
        ("3", "module"),
    ]
    assert [s.allow_one for s in sites] == [True, True, False, True]
    assert [name for name, _ in dropout_modules(model)] == [s.name for s in sites]


def test_a_model_without_sites():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert dropout_sites(model) == []
    assert set_dropout_p(model, 0.3) == 0


class FunctionalDrop(nn.Module):
    """A float rate passed to F.dropout, as OPT's layers do."""

    def __init__(self, dropout_p):
        super().__init__()
        self.dropout_p = dropout_p

    def forward(self, x):
        return F.dropout(x, p=self.dropout_p, training=self.training)


def test_a_float_rate_set_is_the_rate_applied():
    model = FunctionalDrop(0.1).train()
    assert set_dropout_p(model, 0.3) == 1
    assert model.dropout_p == 0.3 and type(model.dropout_p) is float
    torch.manual_seed(0)
    n = 100_000
    zeros = (model(torch.ones(n)) == 0).float().mean().item()
    assert abs(zeros - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)  # 4 sigma, seed fixed


# ------------------------------------------------------------------------------------------------
# nanoGPT's attention: a float for SDPA's dropout_p beside two dropout modules


class CausalSelfAttention(nn.Module):
    """karpathy/nanoGPT model.py's attention, cut down: ``self.dropout`` is a float passed to
    SDPA as ``dropout_p`` on the flash path, ``attn_dropout`` the module of the slow path."""

    def __init__(self, n_embd=16, n_head=2, dropout=0.2, flash=True):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.flash = flash

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.flash:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0, is_causal=True
            )
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(torch.ones(T, T).tril() == 0, float("-inf"))
            att = self.attn_dropout(F.softmax(att, dim=-1))
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


def test_nanogpt_attention():
    torch.manual_seed(0)
    attn = CausalSelfAttention()
    sites = dropout_sites(attn)
    assert [(s.name, s.kind, s.p) for s in sites] == [
        ("dropout", "float", 0.2),
        ("attn_dropout", "module", 0.2),
        ("resid_dropout", "module", 0.2),
    ]
    x = torch.randn(2, 8, 16)
    attn.eval()
    before_eval = attn(x)
    # the module-only way (TRL's disable_dropout_in_model) misses the flash path's float
    for m in attn.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    attn.train()
    assert not torch.equal(attn(x), attn(x))
    assert set_dropout_p(attn, 0.0) == 3
    assert attn.dropout == 0.0
    assert torch.equal(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), before_eval)


# ------------------------------------------------------------------------------------------------
# babyGPT


@pytest.mark.parametrize("attention", ["heads", "fused"])
def test_babygpt(attention):
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=11,
        block_size=8,
        n_embd=16,
        n_head=2,
        n_layer=2,
        dropout=0.3,
        attention=attention,
    )
    model = BabyGPT(config)
    sites = dropout_sites(model)
    # modules only: GPTConfig is read when the model is built, so it is not a site
    assert {s.kind for s in sites} == {"module"}
    assert [s.name for s in sites] == [name for name, _ in dropout_modules(model)]
    assert len(sites) == 2 * ((2 + 2) if attention == "heads" else 3)
    assert all(s.p == 0.3 for s in sites)
    idx = torch.randint(0, 11, (2, 8))
    model.eval()
    before_eval = model(idx)[0]
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    assert set_dropout_p(model, 0.0) == len(sites)
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], before_eval)
    assert model.config.dropout == 0.3  # left alone


# ------------------------------------------------------------------------------------------------
# Filters


def mixed():
    """A model with sites of two kinds and names to filter on."""
    return nn.ModuleDict(
        {
            "attn": CausalSelfAttention(dropout=0.1),
            "mlp": nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.1)),
            "mha": nn.MultiheadAttention(16, 2, dropout=0.1),
        }
    )


def rates(model):
    return {s.name: s.p for s in dropout_sites(model)}


def test_filter_by_name_and_kind():
    model = mixed()
    assert list(rates(model)) == [
        "attn.dropout",
        "attn.attn_dropout",
        "attn.resid_dropout",
        "mlp.1",
        "mha.dropout",
    ]
    assert set_dropout_p(model, 0.5, name="attn.*") == 3
    assert rates(model) == {
        "attn.dropout": 0.5,
        "attn.attn_dropout": 0.5,
        "attn.resid_dropout": 0.5,
        "mlp.1": 0.1,
        "mha.dropout": 0.1,
    }
    assert set_dropout_p(model, 0.2, kind="float") == 2
    assert [n for n, p in rates(model).items() if p == 0.2] == ["attn.dropout", "mha.dropout"]
    assert set_dropout_p(model, 0.3, name=["*resid*", "mlp.*"], kind="module") == 2
    assert rates(model)["attn.resid_dropout"] == rates(model)["mlp.1"] == 0.3
    assert set_dropout_p(model, 0.4, kind=["module", "float"]) == 5
    assert [s.name for s in dropout_sites(model, name="*.attn_*", kind="module")] == [
        "attn.attn_dropout"
    ]
    assert [s.name for s in dropout_sites(model, name="m*")] == ["mlp.1", "mha.dropout"]


def test_filter_errors_name_the_filter():
    model = mixed()
    before = rates(model)
    with pytest.raises(ValueError, match=r"name pattern '\*attention\*' matches no dropout site"):
        set_dropout_p(model, 0.0, name="*attention*")
    with pytest.raises(ValueError, match=r"name pattern 'nope' matches no dropout site"):
        set_dropout_p(model, 0.0, name=["attn.*", "nope"])  # every pattern must match
    with pytest.raises(ValueError, match=r"kind='config' matches no dropout site of ModuleDict"):
        set_dropout_p(model, 0.0, kind="config")
    with pytest.raises(
        ValueError, match=r"name pattern 'mlp\.\*' matches no dropout site of kind 'float'"
    ):
        set_dropout_p(model, 0.0, name="mlp.*", kind="float")
    with pytest.raises(ValueError, match=r"kind must be one of \('module', 'float', 'config'\)"):
        set_dropout_p(model, 0.0, kind="modules")
    for bad in (3, [], [1], ("*",) * 0, b"*"):
        with pytest.raises(TypeError, match=r"name must be a str or a non-empty list of str"):
            set_dropout_p(model, 0.0, name=bad)
    with pytest.raises(TypeError, match=r"kind must be a str or a non-empty list of str, got 1"):
        set_dropout_p(model, 0.0, kind=1)
    assert rates(model) == before  # nothing changed


def test_bad_model_and_p():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        dropout_sites([nn.Dropout()])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got dict"):
        set_dropout_p({"dropout": 0.1}, 0.0)
    model = mixed()
    before = rates(model)
    for bad in (1.5, -0.1, float("nan"), float("inf"), "0.1", None, True):
        with pytest.raises(ValueError, match=r"p must be (a real number )?in \[0, 1\]"):
            set_dropout_p(model, bad)
    assert rates(model) == before


def test_refusal_changes_no_site():
    # float sites come before the DropHead in the model, and still keep their rate
    model = nn.Sequential(FunctionalDrop(0.1), nn.Dropout(0.1), layers.DropHead(0.1))
    with pytest.raises(ValueError, match=r"cannot set p=1.0 on module '2' \(DropHead\).*\[0, 1\)"):
        set_dropout_p(model, 1.0)
    assert rates(model) == {"0.dropout_p": 0.1, "1": 0.1, "2": 0.1}
    assert set_dropout_p(model, 1.0, name=["0.*", "1"]) == 2  # the others accept p = 1


class Picky(nn.Module):
    """A holder whose setter refuses some values, as a transformers config field can."""

    def __init__(self):
        super().__init__()
        self.dropout = 0.1

    def __setattr__(self, name, value):
        if name == "dropout" and value > 0.5:
            raise TypeError(f"dropout must be <= 0.5, got {value}")
        super().__setattr__(name, value)


def test_a_failing_setter_puts_back_what_was_changed():
    model = nn.Sequential(FunctionalDrop(0.1), nn.Dropout(0.1), Picky())
    with pytest.raises(TypeError, match="dropout must be <= 0.5"):
        set_dropout_p(model, 0.9)
    assert rates(model) == {"0.dropout_p": 0.1, "1": 0.1, "2.dropout": 0.1}


# ------------------------------------------------------------------------------------------------
# DropoutScheduler drives every site


def test_scheduler_drives_float_rates():
    torch.manual_seed(0)
    attn = CausalSelfAttention(dropout=0.2)
    scheduler = DropoutScheduler(attn, EarlyDropout(0.2, cutoff=0.5), total_steps=4)
    assert [s.name for s in scheduler.sites] == ["dropout", "attn_dropout", "resid_dropout"]
    assert scheduler.modules == [attn.attn_dropout, attn.resid_dropout]
    x = torch.randn(2, 8, 16)
    attn.train()
    assert not torch.equal(attn(x), attn(x))
    scheduler.step()
    scheduler.step()  # the cutoff: dropout off everywhere, the SDPA float included
    assert attn.dropout == attn.attn_dropout.p == attn.resid_dropout.p == 0.0
    assert torch.equal(attn(x), attn(x))
    assert scheduler.state_dict() == {"last_step": 2, "total_steps": 4, "p": 0.0}
    assert "sites=3" in repr(scheduler)


def test_scheduler_filters_and_errors():
    model = mixed()
    scheduler = DropoutScheduler(model, LinearDecay(0.4), total_steps=2, kind="float")
    assert rates(model) == {
        "attn.dropout": 0.4,
        "attn.attn_dropout": 0.1,
        "attn.resid_dropout": 0.1,
        "mlp.1": 0.1,
        "mha.dropout": 0.4,
    }
    assert scheduler.modules == []
    with pytest.raises(ValueError, match="no dropout site"):
        DropoutScheduler(nn.Linear(2, 2), LinearDecay(0.1), total_steps=3)
    with pytest.raises(ValueError, match="name pattern 'x' matches no dropout site"):
        DropoutScheduler(model, LinearDecay(0.1), total_steps=3, name="x")


# ------------------------------------------------------------------------------------------------
# dropoutlib does not need transformers


def test_imports_without_transformers():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["transformers"] = None  # any import of it fails
        import dropoutlib
        from torch import nn
        model = nn.Sequential(nn.Dropout(0.1), nn.MultiheadAttention(4, 2, dropout=0.1))
        assert [s.kind for s in dropoutlib.dropout_sites(model)] == ["module", "float"]
        assert dropoutlib.set_dropout_p(model, 0.0) == 2
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------------
# transformers models: tiny, random weights, built offline from their config classes

D = 0.3  # every dropout field set at construction, so that the training forward is random
SMALL = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=32,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=0,
)


# family -> (model class, config class, config fields, {site name: kind} spot-checked against
# the modeling code of transformers 5.24.0, {kind: number of sites}). Every spot-checked site has
# rate D. Comments give the line in models/<family>/modeling_<family>.py.
FAMILIES = {
    "gpt2": (
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=64,
            n_positions=32,
            bos_token_id=0,
            eos_token_id=0,
            resid_pdrop=D,
            embd_pdrop=D,
            attn_pdrop=D,
        ),  # fmt: skip
        {
            "transformer.drop": "module",  # nn.Dropout(config.embd_pdrop)
            "transformer.h.0.attn.attn_dropout": "module",  # 110; its .p goes to SDPA (219)
            "transformer.h.1.attn.resid_dropout": "module",  # 111
            "transformer.h.1.mlp.dropout": "module",  # 238: resid_pdrop
            "config.attn_pdrop": "config",
        },
        # config: resid/embd/attn_pdrop and summary_first_dropout (0.1, for the double heads)
        {"module": 7, "config": 4},
    ),
    "llama": (
        "LlamaForCausalLM",
        "LlamaConfig",
        dict(SMALL, attention_dropout=D),
        {
            "model.layers.0.self_attn.attention_dropout": "float",  # 216: no nn.Dropout at all
            "model.layers.1.self_attn.attention_dropout": "float",
            "config.attention_dropout": "config",
        },
        {"float": 2, "config": 1},
    ),
    "mistral": (
        "MistralForCausalLM",
        "MistralConfig",
        dict(SMALL, attention_dropout=D),
        {"model.layers.1.self_attn.attention_dropout": "float"},  # 132
        {"float": 2, "config": 1},
    ),
    "qwen2": (
        "Qwen2ForCausalLM",
        "Qwen2Config",
        dict(SMALL, attention_dropout=D),
        {"model.layers.0.self_attn.attention_dropout": "float"},  # 179
        {"float": 2, "config": 1},
    ),
    "gemma": (
        "GemmaForCausalLM",
        "GemmaConfig",
        dict(SMALL, head_dim=16, attention_dropout=D),
        {"model.layers.0.self_attn.attention_dropout": "float"},  # 227
        {"float": 2, "config": 1},
    ),
    "phi": (
        "PhiForCausalLM",
        "PhiConfig",
        dict(SMALL, resid_pdrop=D, embd_pdrop=D, attention_dropout=D),
        {
            "model.layers.0.self_attn.attention_dropout": "float",  # 162
            "model.layers.0.resid_dropout": "module",  # 259: attention and MLP outputs
            "model.embed_dropout": "module",  # 324
            "config.resid_pdrop": "config",
        },
        {"module": 3, "float": 2, "config": 3},
    ),
    "opt": (
        "OPTForCausalLM",
        "OPTConfig",
        dict(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            word_embed_proj_dim=32,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=0,
            dropout=D,
            attention_dropout=D,
            activation_dropout=D,
            layerdrop=0.0,
        ),  # fmt: skip
        {
            "model.decoder.dropout": "float",  # 286: F.dropout on the embeddings
            "model.decoder.layers.0.dropout": "float",  # 194: F.dropout(p=self.dropout), 228
            "model.decoder.layers.1.self_attn.dropout": "float",  # 111: attention_dropout
            "config.dropout": "config",
        },
        # floats: the decoder's dropout and layerdrop, each layer's dropout and attention's
        {"float": 6, "config": 4},
    ),
    "gpt_neox": (
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=0,
            attention_dropout=D,
            hidden_dropout=D,
        ),  # fmt: skip
        {
            "gpt_neox.layers.0.attention.attention_dropout": "float",  # 174
            "gpt_neox.layers.0.post_attention_dropout": "module",  # 234
            "gpt_neox.layers.1.post_mlp_dropout": "module",  # 235
            "gpt_neox.emb_dropout": "module",  # 299
        },
        # config: attention_dropout, hidden_dropout, classifier_dropout (0.1)
        {"module": 5, "float": 2, "config": 3},
    ),
    "bert": (
        "BertForMaskedLM",
        "BertConfig",
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            max_position_embeddings=32,
            pad_token_id=0,
            hidden_dropout_prob=D,
            attention_probs_dropout_prob=D,
        ),  # fmt: skip
        {
            "bert.embeddings.dropout": "module",  # 64
            "bert.encoder.layer.0.attention.self.dropout": "module",  # 159: probabilities
            "bert.encoder.layer.1.output.dropout": "module",  # 347
            "config.attention_probs_dropout_prob": "config",
        },
        {"module": 7, "config": 2},
    ),
    "t5": (
        "T5ForConditionalGeneration",
        "T5Config",
        dict(
            d_model=32,
            d_ff=64,
            d_kv=16,
            num_layers=2,
            num_heads=2,
            vocab_size=64,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=0,
            dropout_rate=D,
        ),  # fmt: skip
        {
            "encoder.dropout": "module",  # 655: embeddings and final output
            "encoder.block.0.layer.1.DenseReluDense.dropout": "module",  # 81: FFN activation
            "decoder.block.1.layer.2.dropout": "module",  # 136: residual branch
            "encoder.block.0.layer.0.SelfAttention.dropout": "float",  # 195: the attention float
            "decoder.block.0.layer.1.EncDecAttention.dropout": "float",
            "config.dropout_rate": "config",
            "encoder.config.dropout_rate": "config",  # the stacks hold copies of the config
            "decoder.config.dropout_rate": "config",
        },
        # config: dropout_rate and classifier_dropout (0.0), in the model's and both copies
        {"module": 16, "float": 6, "config": 6},
    ),
    "falcon": (
        "FalconForCausalLM",
        "FalconConfig",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            bos_token_id=0,
            eos_token_id=0,
            new_decoder_architecture=False,
            parallel_attn=False,
            alibi=False,
            attention_dropout=D,
            hidden_dropout=D,
        ),  # fmt: skip
        {
            "transformer.h.0.self_attention.attention_dropout": "module",  # 240, .p to SDPA 374
            "transformer.h.0.hidden_dropout": "float",  # 523: copied, never read
            "config.hidden_dropout": "config",  # 621: read by the decoder layer's forward
            "config.attention_dropout": "config",  # 604: the residual after attention
        },
        # floats: the hidden_dropout copies of each layer, its attention and its MLP
        {"module": 2, "float": 6, "config": 2},
    ),
    "persimmon": (
        "PersimmonForCausalLM",
        "PersimmonConfig",
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=0,
            attention_dropout=D,
            hidden_dropout=D,
        ),  # fmt: skip
        {
            "model.layers.0.self_attn.attention_dropout": "module",  # 214: built, never called
            "model.layers.0.dropout": "module",  # 309
            "config.attention_dropout": "config",  # 290: read by the attention's forward
        },
        {"module": 4, "config": 2},
    ),
}

# The families whose forward reads a rate from self.config (see transformers' modeling code):
# for them the layers alone are not enough.
READS_CONFIG = {"falcon", "persimmon"}


@pytest.fixture(scope="module")
def T():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers


def build(T, family):
    model_class, config_class, fields, _, _ = FAMILIES[family]
    torch.manual_seed(0)
    return getattr(T, model_class)(getattr(T, config_class)(**fields))


def forward(model, family):
    idx = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))
    extra = {"decoder_input_ids": idx} if family == "t5" else {}
    with torch.no_grad():
        return model(input_ids=idx, **extra).logits


@pytest.mark.parametrize("family", list(FAMILIES))
def test_transformers_family(T, family):
    model = build(T, family)
    _, _, _, expected, counts = FAMILIES[family]
    sites = {s.name: s for s in dropout_sites(model)}
    for name, kind in expected.items():
        assert name in sites, f"{family}: no site {name!r} in {list(sites)}"
        assert (sites[name].kind, sites[name].p) == (kind, D), name
    found = {}
    for s in sites.values():
        found[s.kind] = found.get(s.kind, 0) + 1
    assert found == counts

    model.eval()
    before_eval = forward(model, family)
    model.train()
    assert not torch.equal(forward(model, family), forward(model, family))
    assert set_dropout_p(model, 0.0) == len(sites)
    assert all(s.p == 0.0 for s in dropout_sites(model))
    assert torch.equal(forward(model, family), forward(model, family))
    model.eval()
    assert torch.equal(forward(model, family), before_eval)
    # and dropout comes back: the training forward is random again
    set_dropout_p(model, D)
    model.train()
    assert not torch.equal(forward(model, family), forward(model, family))


@pytest.mark.parametrize("family", ["llama", "opt", "t5", "gpt_neox", "phi", *sorted(READS_CONFIG)])
def test_module_only_tools_miss_real_dropout(T, family):
    # TRL's disable_dropout_in_model (trl/trainer/utils.py) is this loop
    model = build(T, family).train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0
    assert not torch.equal(forward(model, family), forward(model, family))


@pytest.mark.parametrize("family", sorted(READS_CONFIG))
def test_families_that_read_the_config_at_forward(T, family):
    model = build(T, family).train()
    set_dropout_p(model, 0.0, kind=["module", "float"])
    assert not torch.equal(forward(model, family), forward(model, family))  # layers: not enough
    assert set_dropout_p(model, 0.0, kind="config") == FAMILIES[family][4]["config"]
    assert model.config.attention_dropout == model.config.hidden_dropout == 0.0
    assert torch.equal(forward(model, family), forward(model, family))


def test_llama_int_rate_and_filters(T):
    model = build(T, "llama")
    assert [s.name for s in dropout_sites(model, name="*.self_attn.*")] == [
        "model.layers.0.self_attn.attention_dropout",
        "model.layers.1.self_attn.attention_dropout",
    ]
    with pytest.raises(
        ValueError, match=r"kind='module' matches no dropout site of LlamaForCausal"
    ):
        set_dropout_p(model, 0.0, kind="module")
    assert set_dropout_p(model, 0.1, name="model.layers.1.*") == 1
    assert [layer.self_attn.attention_dropout for layer in model.model.layers] == [D, 0.1]
    assert model.config.attention_dropout == D
    # LlamaConfig(attention_dropout=0) keeps the int 0, and so does each layer: still a site
    fields = dict(FAMILIES["llama"][2], attention_dropout=0)
    zero = T.LlamaForCausalLM(T.LlamaConfig(**fields))
    assert zero.model.layers[0].self_attn.attention_dropout == 0
    assert [s.p for s in dropout_sites(zero)] == [0.0, 0.0, 0.0]
    assert set_dropout_p(zero, 0.2) == 3
    zero.train()
    assert not torch.equal(forward(zero, "llama"), forward(zero, "llama"))


def test_scheduler_on_llama(T):
    model = build(T, "llama").train()
    scheduler = DropoutScheduler(model, EarlyDropout(D, cutoff=0.5), total_steps=2)
    assert len(scheduler.sites) == 3 and scheduler.modules == []
    assert not torch.equal(forward(model, "llama"), forward(model, "llama"))
    assert scheduler.step() == 0.0
    assert model.config.attention_dropout == 0.0
    assert torch.equal(forward(model, "llama"), forward(model, "llama"))
    state = scheduler.state_dict()
    assert state == {"last_step": 1, "total_steps": 2, "p": 0.0}
    other = build(T, "llama")
    resumed = DropoutScheduler(other, EarlyDropout(D, cutoff=0.5), total_steps=2)
    resumed.load_state_dict(state)
    assert [s.p for s in dropout_sites(other)] == [0.0, 0.0, 0.0]


def test_config_sites_are_sub_configs_too(T):
    # a composite config keeps its parts as sub-configs: their rates are sites, listed once
    config = T.T5Config(**FAMILIES["t5"][2])
    model = T.T5ForConditionalGeneration(config)
    holder = nn.ModuleDict({"a": model})
    holder.config = T.EncoderDecoderConfig.from_encoder_decoder_configs(
        T.BertConfig(hidden_dropout_prob=0.2), T.BertConfig(hidden_dropout_prob=0.2)
    )
    holder["b"] = nn.Module()
    holder["b"].config = holder.config.encoder  # the same object, held twice: listed once
    names = [s.name for s in dropout_sites(holder, kind="config")]
    assert "config.encoder.hidden_dropout_prob" in names
    assert "config.decoder.attention_probs_dropout_prob" in names
    assert "a.config.dropout_rate" in names
    assert len(names) == len(set(names))
