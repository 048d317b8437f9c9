"""Chapter 10's checkers: the quiz and the dropout bug hunt (dropoutlib.checks.review)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.checks import HINTS, review
from dropoutlib.checks.review import BuggyGPT, check_dropout_bugs, check_quiz

LANGS = ("en", "ru", "zh")

# The chapter's solution (chapters/*/10-review.ipynb has the same answers).
ANSWERS = {
    "q01": 1.25,
    "q02": 0.25,
    "q03": 18,
    "q04": 0.0,
    "q05": 0.1,
    "q06": 0.3,
    "q07": 2.0,
    "q08": 8 / 3,
    "q09": 9.6,
    "q10": 0.0545,
    "q11": 0.06,
    "q12": 0.5,
    "q13": 0.208,
    "q14": "b",
    "q15": "d",
    "q16": "c",
    "q17": "a",
    "q18": "b",
    "q19": "d",
    "q20": "a",
}


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the quiz ------------------------------------------------------------------------------------


def test_quiz_has_at_least_15_questions_with_hints_in_every_language():
    keys = [key for key, _, _ in review.QUIZ]
    assert len(keys) >= 15 and keys == sorted(keys) and set(keys) == set(ANSWERS)
    kinds = {kind for _, kind, _ in review.QUIZ}
    assert kinds == {"number", "choice"}
    for lang in LANGS:
        for key in keys:
            assert HINTS[lang][f"quiz_{key}"].strip()


@pytest.mark.parametrize("lang", LANGS)
def test_the_solution_passes(lang, capsys):
    assert check_quiz(ANSWERS, lang=lang) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ quiz: 20/20")


def test_live_answers_come_from_the_libraries():
    transformers = pytest.importorskip("transformers")
    assert review.quiz_expected("q04") == transformers.LlamaConfig().attention_dropout == 0.0
    from dropoutlib.model import BabyGPT, GPTConfig

    model = BabyGPT(GPTConfig.v10(vocab_size=100))
    assert review.quiz_expected("q03") == sum(isinstance(m, nn.Dropout) for m in model.modules())
    assert review.quiz_expected("q10") == pytest.approx(0.1 * 6 / 11)
    # R-Drop: (1/2) sum (p - q)(log p - log q) for (0.5, 0.5) and (0.8, 0.2)
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2])
    assert review.quiz_expected("q13") == pytest.approx(0.5 * ((p - q) * (p.log() - q.log())).sum())


def test_the_unanswered_stub_fails_with_one_hint_and_is_not_done(tmp_path, monkeypatch, capsys):
    verdicts = tmp_path / "v.jsonl"
    monkeypatch.setenv("DROPOUTLIB_VERDICTS", str(verdicts))
    assert check_quiz({key: None for key in ANSWERS}, lang="ru") is False
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "✗ quiz: 0/20" and len(out) == 2 and "None" in out[1]
    (line,) = records(verdicts)
    assert line["not_done"] is True and line["hint"] == "unanswered" and line["held"] == 0
    assert line["total"] == 20 and len(line["failures"]) == 20 and line["lang"] == "ru"
    assert line["cell"] is None  # not in IPython


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_each_wrong_answer_is_caught_with_its_hint(key, tmp_path, monkeypatch, capsys):
    wrong = dict(ANSWERS)
    if isinstance(ANSWERS[key], str):
        wrong[key] = next(c for c in "abcd" if c != ANSWERS[key])
    else:
        wrong[key] = ANSWERS[key] + 0.1 + abs(ANSWERS[key])  # outside every tolerance
    verdicts = tmp_path / "v.jsonl"
    monkeypatch.setenv("DROPOUTLIB_VERDICTS", str(verdicts))
    assert check_quiz(wrong, lang="zh") is False
    out = capsys.readouterr().out
    assert "✗ quiz: 19/20" in out and f"✗ {key}: {HINTS['zh'][f'quiz_{key}']}" in out
    (line,) = records(verdicts)
    assert line["failures"] == [key] and line["hint"] == f"quiz_{key}"
    assert line["not_done"] is False


def test_typical_wrong_answers():
    def verdict(key, value):
        return check_quiz(dict(ANSWERS, **{key: value}), verbose=False)

    assert not verdict("q01", 0.8)  # multiplied by 1 - p
    assert not verdict("q01", 5.0)  # 1/p
    assert not verdict("q02", 0.2)  # p instead of p/(1-p)
    assert not verdict("q03", 3)  # sites per block, not modules
    assert not verdict("q03", 9)  # one module per layer and site
    assert not verdict("q05", 0.3)  # the config change is not seen
    assert not verdict("q06", 0.0)  # F.dropout does not know the mode
    assert not verdict("q07", 1.0)  # scaled twice
    assert not verdict("q08", 8 / 5)  # heads dropped, not kept
    assert not verdict("q09", 2.4)  # blocks skipped, not run
    assert not verdict("q10", 0.05)  # 6/12 instead of 6/11
    assert not verdict("q12", 0.25)  # the variance, not the standard deviation


def test_answer_forms_are_accepted():
    loose = {int(k[1:]): v for k, v in ANSWERS.items()}  # 1, 2, ... as keys
    loose[1] = "1.25"  # a number in a string
    loose[3] = torch.tensor(18)  # a 0-d tensor
    loose[14] = " (B) "
    loose["q15"] = "d)"  # "q15" and 15 both name question 15; the int key wins only if not None
    assert check_quiz(loose, verbose=False)
    assert check_quiz({f"Q{k[1:].lstrip('0')}": v for k, v in ANSWERS.items()}, verbose=False)


def test_malformed_answers_fail_cleanly(capsys):
    assert check_quiz([1.25, 0.25], verbose=True) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✗ quiz: 0/20" and len(out) == 2 and "dict" in out[1]
    assert not check_quiz(dict(ANSWERS, q01=True), verbose=False)  # a bool is not a number
    assert not check_quiz(dict(ANSWERS, q01=float("nan")), verbose=False)
    assert not check_quiz(dict(ANSWERS, q14="bb"), verbose=False)
    assert not check_quiz(dict(ANSWERS, q14=2), verbose=False)  # a letter, not an index
    assert not check_quiz(dict(ANSWERS, q02="a"), verbose=False)  # a number, not a letter


# -- the bug hunt --------------------------------------------------------------------------------


class FixedGPT(BuggyGPT):
    """The four bugs fixed: training flag, SDPA at eval, a module for the residual rate, no
    second rescaling."""

    def __init__(self, *args, resid_dropout=0.1, **kwargs):
        super().__init__(*args, resid_dropout=resid_dropout, **kwargs)
        del self.resid_keep
        self.resid_dropout = nn.Dropout(resid_dropout)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = F.dropout(self.tok_emb(idx) + self.pos_emb(pos), self.emb_dropout, self.training)
        q, k, v = self.c_attn(self.ln_1(x)).split(x.size(-1), dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        p = self.attn_dropout.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, -1)
        x = x + self.resid_dropout(self.c_proj(y))
        return self.lm_head(self.ln_f(x + self.ffn_dropout(self.mlp_proj(self.ffn(x)))))

    def ffn(self, x):
        return F.gelu(self.c_fc(self.ln_2(x)))


class KeepsOneBug(FixedGPT):
    """Each variant puts back one bug (or a typical wrong fix) at one site."""

    bug = ""

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        emb = self.tok_emb(idx) + self.pos_emb(pos)
        if self.bug == "emb_no_flag":
            x = F.dropout(emb, self.emb_dropout)
        elif self.bug == "emb_never":
            x = F.dropout(emb, self.emb_dropout, training=False)
        elif self.bug == "emb_unscaled":  # a hand-made mask without 1/(1-p)
            keep = torch.rand_like(emb) >= self.emb_dropout
            x = emb * keep if self.training else emb
        elif self.bug == "emb_keep_prob":  # the rate used as a keep probability
            x = F.dropout(emb, 1.0 - self.emb_dropout, self.training)
        elif self.bug == "emb_fixed":  # a rate written into the code
            x = F.dropout(emb, 0.1, self.training) if self.emb_dropout > 0 else emb
        else:
            x = F.dropout(emb, self.emb_dropout, self.training)
        q, k, v = self.c_attn(self.ln_1(x)).split(x.size(-1), dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        p = self.attn_dropout.p
        if self.bug != "attn_eval":
            p = p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, -1)
        if self.bug == "resid_stream":  # dropout on the residual stream, not on the branch
            x = self.resid_dropout(x + self.c_proj(y))
        else:
            x = x + self.resid_dropout(self.c_proj(y))
        out = self.ffn_dropout(self.mlp_proj(self.ffn(x)))
        if self.bug == "ffn_twice":
            out = out / (1.0 - self.ffn_dropout.p)
        elif self.bug == "ffn_twice_train":  # rescaled again in training only
            out = out / (1.0 - self.ffn_dropout.p) if self.training else out
        return self.lm_head(self.ln_f(x + out))


def variant(bug):
    return type(f"Bug_{bug}", (KeepsOneBug,), {"bug": bug})


class IdentityWhenZero(FixedGPT):
    """fairseq/HF style: no module at all when the rate is 0, so nothing can switch it on."""

    def __init__(self, *args, ffn_dropout=0.1, **kwargs):
        super().__init__(*args, ffn_dropout=ffn_dropout, **kwargs)
        if ffn_dropout == 0:
            self.ffn_dropout = nn.Identity()


class Stub(nn.Module):
    def __init__(self, vocab_size=32, block_size=16, n_embd=32, n_head=4, **rates):
        raise NotImplementedError("Exercise 2: write your solution here")

    def forward(self, idx):
        raise NotImplementedError("Exercise 2: write your solution here")


def failures(cls, tmp_path, monkeypatch) -> dict:
    verdicts = tmp_path / "v.jsonl"
    monkeypatch.setenv("DROPOUTLIB_VERDICTS", str(verdicts))
    check_dropout_bugs(cls, verbose=False)
    (line,) = records(verdicts)
    return line


def test_the_fixed_model_passes(capsys):
    assert check_dropout_bugs(FixedGPT, lang="ru") is True
    assert capsys.readouterr().out.startswith("✓ FixedGPT: 5/5")


def test_the_buggy_model_shows_all_four_bugs(tmp_path, monkeypatch, capsys):
    line = failures(BuggyGPT, tmp_path, monkeypatch)
    assert line["failures"] == ["site_emb", "site_attn", "site_resid", "site_ffn"]
    assert line["held"] == 1 and line["not_done"] is False
    check_dropout_bugs(BuggyGPT, lang="en")
    out = capsys.readouterr().out
    assert "training=self.training" in out  # emb: F.dropout without the flag
    assert "if self.training else 0.0" in out  # attn: SDPA at eval
    assert "set_dropout_p(model, 0.0) left the dropout at the attention output" in out
    assert "do not rescale again" in out  # ffn: scaled twice


@pytest.mark.parametrize(
    "bug, site, key",
    [
        ("emb_no_flag", "site_emb", "bug_eval_random"),
        ("emb_never", "site_emb", "bug_no_drop"),
        ("emb_unscaled", "site_emb", "bug_mean"),
        ("emb_keep_prob", "site_emb", "bug_rate"),
        ("emb_fixed", "site_emb", "bug_rate"),
        ("resid_stream", "site_resid", "bug_rate"),
        ("attn_eval", "site_attn", "bug_eval_random"),
        ("ffn_twice", "site_ffn", "bug_eval_scaled"),
        ("ffn_twice_train", "site_ffn", "bug_mean"),
    ],
)
def test_one_bug_at_one_site(bug, site, key, tmp_path, monkeypatch):
    line = failures(variant(bug), tmp_path, monkeypatch)
    assert line["failures"] == [site] and line["hint"] == key and line["held"] == 4


def test_a_site_that_cannot_be_switched_on(tmp_path, monkeypatch):
    line = failures(IdentityWhenZero, tmp_path, monkeypatch)
    assert line["failures"] == ["site_ffn"] and line["hint"] == "bug_set_on"


def test_the_stub_is_not_done(tmp_path, monkeypatch, capsys):
    line = failures(Stub, tmp_path, monkeypatch)
    assert line["not_done"] is True and line["held"] == 0 and line["hint"] == "not_implemented"
    assert check_dropout_bugs(Stub, lang="zh") is False
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✗ Stub: 0/5" and len(out) == 2 and "NotImplementedError" in out[1]


def test_other_wrong_answers(tmp_path, monkeypatch):
    assert not check_dropout_bugs(lambda **kw: "not a model", verbose=False)

    class Renamed(FixedGPT):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.final_norm = self.ln_f
            del self.ln_f

        def forward(self, idx):
            self.ln_f = self.final_norm
            try:
                return super().forward(idx)
            finally:
                del self.ln_f

    line = failures(Renamed, tmp_path, monkeypatch)
    assert line["held"] == 1 and line["hint"] == "bug_names"


def test_the_buggy_model_is_a_working_model():
    """Apart from its dropout the buggy model is a plain GPT block: right shapes, gradients."""
    torch.manual_seed(0)
    model = BuggyGPT(emb_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0, ffn_dropout=0.0)
    idx = torch.randint(32, (2, 16))
    logits = model(idx)
    assert logits.shape == (2, 16, 32)
    F.cross_entropy(logits.view(-1, 32), idx.view(-1)).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert torch.equal(model(idx), model(idx))  # every rate 0: no bug can show


# -- config defaults -----------------------------------------------------------------------------


def test_config_defaults_are_read_live():
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    rows = {(cls, name): value for _, cls, name, value in review.config_defaults()}
    assert rows["LlamaConfig", "attention_dropout"] == transformers.LlamaConfig().attention_dropout
    assert rows["GPT2Config", "resid_pdrop"] == transformers.GPT2Config().resid_pdrop
    assert rows["LoraConfig", "lora_dropout"] == peft.LoraConfig().lora_dropout


def test_show_source_shows_the_buggy_model():
    code = review.show_source(BuggyGPT)
    text = code.data if hasattr(code, "data") else code
    assert "class BuggyGPT" in text and "scaled_dot_product_attention" in text
