"""dropoutlib.sites.config_rates: the dropout fields real model families ship, read from the
installed transformers config classes (built with their defaults: no weights, no network)."""

import pytest
from torch import nn

from dropoutlib.sites import config_rates, config_rates_table, dropout_sites


@pytest.fixture(scope="module")
def T():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers


def test_defaults_of_real_families(T):
    # the defaults of transformers' config classes (configuration_<family>.py)
    assert config_rates(T.GPT2Config) == {
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "summary_first_dropout": 0.1,
    }
    assert config_rates(T.LlamaConfig) == {"attention_dropout": 0.0}
    assert config_rates(T.BertConfig) == {
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }  # classifier_dropout=None is not a rate
    assert config_rates(T.T5Config)["dropout_rate"] == 0.1
    assert config_rates(T.OPTConfig)["dropout"] == 0.1


def test_instances_keep_their_values_and_sub_configs_are_named(T):
    assert config_rates(T.LlamaConfig(attention_dropout=0.25)) == {"attention_dropout": 0.25}
    rates = config_rates(T.Gemma3Config)
    assert "text_config.attention_dropout" in rates
    # the same fields dropout_sites lists as config sites of a model holding the config
    holder = nn.Module()
    holder.config = T.GPT2Config()
    assert {s.name.removeprefix("config."): s.p for s in dropout_sites(holder)} == config_rates(
        holder.config
    )


def test_table_keeps_the_order_and_names_each_family(T):
    rows = config_rates_table([T.GPT2Config, T.LlamaConfig(), T.MistralConfig])
    assert [name for name, _ in rows] == ["gpt2", "llama", "mistral"]
    assert rows[1][1] == {"attention_dropout": 0.0}


def test_bad_input(T):
    with pytest.raises(TypeError, match="config must be a transformers config"):
        config_rates({"attention_dropout": 0.1})
    with pytest.raises(TypeError, match="configs must be a list"):
        config_rates_table("gpt2")
