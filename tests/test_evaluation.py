"""Pass@k estimator and summaries on hand-computed cases, sampling on a model whose next-token distribution is
known exactly, and sampling-based evaluation of a real (toy) policy."""

import math

import pytest

from uec_repro.evaluation import evaluate_policy, majority_answer, pass_at_k, sample, summarize
from uec_repro.validation import ParameterError


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (16, 0, 1, 0.0),
        (16, 16, 16, 1.0),
        (16, 4, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (10, 3, 4, 1 - math.comb(7, 4) / math.comb(10, 4)),
        (5, 4, 2, 1.0),  # fewer wrong than k: every k-subset holds a correct one
        (64, 1, 64, 1.0),
    ],
)
def test_pass_at_k_matches_combinatorial_formula(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 3, 0.9),  # n - c = k: 1 - C(3,3)/C(5,3) = 1 - 1/10 (the only all-wrong draw)
        (5, 3, 3, 1.0),  # n - c = k - 1: no 3 draws are all wrong
        (5, 1, 3, 0.6),  # n - c = k + 1: 1 - C(4,3)/C(5,3) = 1 - 4/10
        (5, 0, 3, 0.0),  # c = 0
        (5, 5, 3, 1.0),  # c = n
        (5, 0, 5, 0.0),  # k = n, no correct sample
        (5, 1, 5, 1.0),  # k = n: the draw is every sample, the correct one included
        (5, 2, 1, 0.4),  # k = 1: c / n
        (6, 2, 4, 14 / 15),  # n - c = k: 1 - C(4,4)/C(6,4) = 1 - 1/15
        (8, 3, 2, 1 - 10 / 28),  # 1 - C(5,2)/C(8,2)
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k_at_the_boundaries(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pass_at_k_is_monotone_in_k():
    values = [pass_at_k(32, 3, k) for k in range(1, 33)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ParameterError):
        pass_at_k(n, c, k)


def test_majority_answer():
    assert majority_answer(["\\boxed{3}", "\\boxed{4}", "x \\boxed{3}", "none"]) == "3"
    assert majority_answer(["no answer"]) is None
    assert majority_answer(["\\boxed{4}", "\\boxed{3}", "\\boxed{3}"]) == "3"  # the count wins, not the order


def test_majority_answer_breaks_ties_by_first_occurrence_both_ways_round():
    assert majority_answer(["\\boxed{3}", "\\boxed{4}", "\\boxed{3}", "\\boxed{4}"]) == "3"
    assert majority_answer(["\\boxed{4}", "\\boxed{3}", "\\boxed{4}", "\\boxed{3}"]) == "4"
    assert majority_answer(["\\boxed{4}", "\\boxed{3}", "\\boxed{3}", "\\boxed{4}"]) == "4"
    assert majority_answer(["none", "\\boxed{7}", "\\boxed{5}"]) == "7"
    assert majority_answer(["\\boxed{5}", "none", "\\boxed{7}"]) == "5"


def test_majority_answer_ignores_empty_and_unclosed_boxes():
    assert majority_answer(["\\boxed{}", "\\boxed{}", "\\boxed{ }", "\\boxed{5", "\\boxed{6}"]) == "6"
    assert majority_answer(["\\boxed{}", "\\boxed{9"]) is None
    assert majority_answer([]) is None


# Three prompts, n = 4 samples each. Hand-computed (G = hard_group_size = 2):
#   pass@1 = mean(c / n)                  = (0 + 2/4 + 3/4) / 3         = 5/12
#   pass@2 = mean(1 - C(n-c,2)/C(4,2))    = (0 + (1 - 1/6) + 1) / 3     = 11/18
#   pass@4                                = (0 + 1 + 1) / 3             = 2/3
#   hard_share@2 = mean(P[2 draws all wrong]) = (1 + 1/6 + 0) / 3      = 7/18   (= 1 - pass@2)
RECORDS = [
    {"correct": 0, "n": 4, "maj_correct": 0.0, "entropy": 0.3, "length": 10.0, "truncated": 0.25},
    {"correct": 2, "n": 4, "maj_correct": 1.0, "entropy": 0.6, "length": 20.0, "truncated": 0.0},
    {"correct": 3, "n": 4, "maj_correct": 1.0, "entropy": 1.5, "length": 36.0, "truncated": 0.5},
]


def test_summarize_on_hand_computed_records():
    summary = summarize(RECORDS, ks=(1, 2, 4), hard_group_size=2)
    expected = {
        "pass@1": 5 / 12,
        "pass@2": 11 / 18,
        "pass@4": 2 / 3,
        "mean@4": 5 / 12,  # 5 correct of 12 samples
        "maj@4": 2 / 3,
        "hard_share@2": 7 / 18,
        "token_entropy": 0.8,  # (0.3 + 0.6 + 1.5) / 3
        "completion_length": 22.0,  # (10 + 20 + 36) / 3
        "truncated_share": 0.25,  # (0.25 + 0 + 0.5) / 3
        "prompts": 3,
        "samples_per_prompt": 4,
    }
    assert summary.keys() == expected.keys()
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize(("group", "expected"), [(1, 7 / 12), (2, 7 / 18), (3, 1 / 3), (4, 1 / 3)])
def test_hard_share_is_the_chance_that_a_group_has_no_correct_answer(group, expected):
    """G = 1: mean(1 - c/n) = (1 + 1/2 + 1/4) / 3; G = 3: only the c = 0 prompt can fail (C(2,3) = 0); G = 4
    too."""
    assert summarize(RECORDS, ks=(1,), hard_group_size=group)[f"hard_share@{group}"] == pytest.approx(
        expected
    )


def test_summarize_one_record():
    summary = summarize([RECORDS[1]], ks=(2,), hard_group_size=4)
    assert summary["pass@2"] == pytest.approx(5 / 6) and summary["hard_share@4"] == 0.0
    assert summary["mean@4"] == 0.5 and summary["maj@4"] == 1.0 and summary["prompts"] == 1


# --------------------------------------------------------------------------------------------------
# sample(): a one-layer Llama whose logits are the same fixed vector at every position
# --------------------------------------------------------------------------------------------------
def fixed_logit_policy(logits):
    """Vocabulary <pad>, </s> (EOS), a, b (one character each); every next-token distribution is
    softmax(logits / T).

    All embeddings are the same vector of ones and the layer's output projections are zero, so the last hidden
    state is that vector whatever the context; the final norm keeps it, and lm_head's first column is
    ``logits``.
    """
    import torch
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(tok_models.WordLevel({"<pad>": 0, "</s>": 1, "a": 2, "b": 3}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(
        vocab_size=4,
        hidden_size=4,
        intermediate_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=128,
        rms_norm_eps=1e-12,
        eos_token_id=1,
        pad_token_id=0,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.model.embed_tokens.weight.fill_(1.0)
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight[:, 0] = torch.tensor(logits)
    return model, tokenizer


# logits (pad, EOS, a, b) = (-1e4, 0, 0, ln 2): pad is never drawn; at T = 1, p = (0, 1/4, 1/4, 1/2)
LOGITS = [-1e4, 0.0, 0.0, math.log(2)]
ENTROPY_BY_TEMPERATURE = {
    1.0: 1.5 * math.log(2),  # -(2 x 1/4 ln 1/4 + 1/2 ln 1/2)
    0.5: math.log(6) / 3 + 2 / 3 * math.log(3 / 2),  # logits x 2: weights (1, 1, 4), p = (1/6, 1/6, 2/3)
    # logits / 2: weights (1, 1, sqrt 2), Z = 2 + sqrt 2: H = ln Z - (sqrt 2 / Z) (ln 2) / 2
    2.0: math.log(2 + math.sqrt(2)) - math.sqrt(2) / (2 + math.sqrt(2)) * math.log(2) / 2,
}
PROMPTS = ["ab", "b", "abba"]  # different lengths: left padding within a call


@pytest.fixture(scope="module")
def fixed_policy():
    return fixed_logit_policy(LOGITS)


def test_the_fixed_logit_policy_has_the_logits_it_was_given(fixed_policy):
    import torch

    model, tokenizer = fixed_policy
    with torch.no_grad():
        logits = model(**tokenizer(PROMPTS, return_tensors="pt", padding=True)).logits
    assert torch.allclose(logits, torch.tensor(LOGITS).expand_as(logits), atol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_token_entropy_is_that_of_the_distribution_at_the_sampling_temperature(fixed_policy, temperature):
    model, tokenizer = fixed_policy
    samples = sample(model, tokenizer, PROMPTS, n=8, temperature=temperature, max_new_tokens=6, batch_size=16)
    entropies = [value for prompt in samples.mean_entropy for value in prompt]
    assert len(entropies) == 24
    assert entropies == pytest.approx([ENTROPY_BY_TEMPERATURE[temperature]] * 24, abs=1e-5)
    if temperature != 1.0:  # and not the T = 1 entropy (logits not divided by T)
        assert abs(entropies[0] - ENTROPY_BY_TEMPERATURE[1.0]) > 0.04


# -log p of each token at T: (EOS, a, b) = (ln 4, ln 4, ln 2) at T = 1 and (ln 6, ln 6, ln 3/2) at T = 0.5
NLL_BY_TEMPERATURE = {
    1.0: (math.log(4), math.log(4), math.log(2)),
    0.5: (math.log(6), math.log(6), math.log(1.5)),
}


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_mean_nll_is_that_of_the_sampled_tokens(fixed_policy, temperature):
    """Mean -log p of a completion's tokens, EOS included, from its text (one character per token)."""
    model, tokenizer = fixed_policy
    samples = sample(model, tokenizer, PROMPTS, n=8, temperature=temperature, max_new_tokens=6, batch_size=16)
    if getattr(samples, "mean_nll", None) is None:
        pytest.skip("sample() reports no mean_nll")
    eos, a, b = NLL_BY_TEMPERATURE[temperature]
    for texts, nlls, truncated in zip(samples.completions, samples.mean_nll, samples.truncated, strict=True):
        for text, nll, cut in zip(texts, nlls, truncated, strict=True):
            total = text.count("a") * a + text.count("b") * b + (0 if cut else eos)
            assert nll == pytest.approx(total / (len(text) + (0 if cut else 1)), abs=1e-5), text


def test_sampled_lengths_truncation_and_text_agree(fixed_policy):
    """Each token is one character and EOS is dropped from the text: a finished completion has len(text) + 1
    tokens (EOS included), a truncated one exactly max_new_tokens tokens, all of them text."""
    model, tokenizer = fixed_policy
    samples = sample(model, tokenizer, PROMPTS, n=8, max_new_tokens=6, batch_size=16)
    assert [len(x) for x in (samples.completions, samples.lengths, samples.truncated)] == [3, 3, 3]
    pairs = []
    for texts, lengths, truncated in zip(
        samples.completions, samples.lengths, samples.truncated, strict=True
    ):
        assert len(texts) == len(lengths) == len(truncated) == 8
        for text, length, cut in zip(texts, lengths, truncated, strict=True):
            assert set(text) <= {"a", "b"}
            assert (length, cut) == ((6, True) if len(text) == 6 else (len(text) + 1, False)), (
                text,
                length,
                cut,
            )
            pairs.append((length, cut))
    # p(EOS) = 1/4 per token: both outcomes, and several lengths, occur among 24 samples (seeded)
    assert {cut for _, cut in pairs} == {True, False} and len({length for length, _ in pairs}) >= 3
    assert len({text for texts in samples.completions for text in texts}) > 3  # sampled, not greedy


def test_sampling_is_seeded_and_restores_the_model_and_tokenizer(fixed_policy):
    model, tokenizer = fixed_policy
    model.train()
    tokenizer.padding_side = "right"
    first = sample(model, tokenizer, PROMPTS, n=4, max_new_tokens=6)
    assert model.training and tokenizer.padding_side == "right"
    assert sample(model, tokenizer, PROMPTS, n=4, max_new_tokens=6, seed=0).completions == first.completions
    assert sample(model, tokenizer, PROMPTS, n=4, max_new_tokens=6, seed=1).completions != first.completions
    model.eval()
    sample(model, tokenizer, PROMPTS, n=1, max_new_tokens=1)
    assert not model.training


def test_without_eos_every_completion_runs_to_the_default_64_tokens():
    model, tokenizer = fixed_logit_policy([-1e4, -1e4, 0.0, 0.0])
    samples = sample(model, tokenizer, ["a"], n=2)
    assert samples.lengths == [[64, 64]] and samples.truncated == [[True, True]]
    assert [len(text) for text in samples.completions[0]] == [64, 64]
    assert samples.mean_entropy[0] == pytest.approx([math.log(2)] * 2)
    one = sample(model, tokenizer, ["a"], n=1, max_new_tokens=4)  # a single row
    assert one.lengths == [[4]] and one.mean_entropy == [[pytest.approx(math.log(2))]]
    if getattr(one, "mean_nll", None) is not None:  # p(a) = p(b) = 1/2
        assert one.mean_nll == [[pytest.approx(math.log(2))]]


def _generate_calls(model, monkeypatch) -> list[int]:
    """Rows (prompts x samples) of each model.generate call."""
    calls = []
    original = model.generate

    def counting(**kwargs):
        out = original(**kwargs)
        calls.append(out.sequences.shape[0])
        return out

    monkeypatch.setattr(model, "generate", counting)
    return calls


@pytest.mark.parametrize(
    ("n", "batch_size", "rows"),
    [
        (2, 4, [4, 2]),
        (2, 2, [2, 2, 2]),
        (2, 100, [6]),
        (3, 6, [6, 3]),
        # n > batch_size: each prompt's samples split over calls of at most batch_size rows
        (2, 1, [1] * 6),
        (3, 2, [2, 1] * 3),
        (5, 2, [2, 2, 1] * 3),
    ],
)
def test_batch_size_counts_sequences_per_generate_call(fixed_policy, monkeypatch, n, batch_size, rows):
    model, tokenizer = fixed_policy
    calls = _generate_calls(model, monkeypatch)
    samples = sample(model, tokenizer, PROMPTS, n=n, max_new_tokens=3, batch_size=batch_size)
    assert calls == rows and max(calls) <= batch_size
    assert [len(texts) for texts in samples.completions] == [n] * 3
    for field in ("mean_entropy", "mean_nll", "lengths", "truncated"):
        assert [len(values) for values in getattr(samples, field)] == [n] * 3


def test_default_batch_size_is_256_sequences(fixed_policy, monkeypatch):
    model, tokenizer = fixed_policy
    calls = _generate_calls(model, monkeypatch)
    sample(model, tokenizer, ["a"] * 257, n=1, max_new_tokens=1)
    assert calls == [256, 1]


class RecordingProcessor:
    """A vision-language processor stand-in: records the images and options of each call, tokenizes the
    text."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, *, text, images, **options):
        self.calls.append((list(text), images, options.get("add_special_tokens")))
        return self.tokenizer(text=text, **options)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)


def test_images_travel_with_their_prompts_and_no_special_tokens_are_added(fixed_policy):
    model, tokenizer = fixed_policy
    processor = RecordingProcessor(tokenizer)
    images = [["image 0"], ["image 1"], ["image 2"]]
    samples = sample(model, processor, PROMPTS, n=2, max_new_tokens=2, batch_size=4, images=images)
    assert processor.calls == [(PROMPTS[:2], images[:2], False), (PROMPTS[2:], images[2:], False)]
    assert [len(texts) for texts in samples.completions] == [2, 2, 2]


@pytest.mark.parametrize(
    "bad",
    [
        dict(n=0),
        dict(temperature=0.0),
        dict(top_p=0.0),
        dict(top_p=1.01),
        dict(max_new_tokens=0),
        dict(batch_size=0),
    ],
)
def test_sample_rejects_impossible_settings(fixed_policy, bad):
    model, tokenizer = fixed_policy
    with pytest.raises(ParameterError):
        sample(model, tokenizer, PROMPTS, **{"n": 2, "max_new_tokens": 2, **bad})


def test_sample_accepts_the_smallest_settings(fixed_policy):
    model, tokenizer = fixed_policy
    samples = sample(
        model, tokenizer, ["a"], n=1, max_new_tokens=1, batch_size=1, top_p=1.0, temperature=1e-3
    )
    assert samples.lengths == [[1]] and samples.completions == [["b"]]  # T -> 0: the most likely token, b


@pytest.mark.slow
def test_evaluate_policy_on_toy(toy_policy_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uec_repro.tasks import load_task

    model = AutoModelForCausalLM.from_pretrained(toy_policy_path)
    tokenizer = AutoTokenizer.from_pretrained(toy_policy_path)
    test = load_task("arith", "test", n=24, tokenizer=tokenizer)
    result = evaluate_policy(model, tokenizer, test, n=8, ks=(1, 8), max_new_tokens=48)
    s = result.summary
    assert s["prompts"] == 24 and len(result.per_prompt) == 24
    assert 0 <= s["pass@1"] <= s["pass@8"] <= 1
    assert s["pass@1"] == pytest.approx(s["mean@8"])
    assert s["pass@1"] > 0  # partial competence: some answers are right
    assert s["token_entropy"] > 0 and 1 <= s["completion_length"] <= 48
    again = evaluate_policy(model, tokenizer, test, n=8, ks=(1, 8), max_new_tokens=48)
    assert again.summary == s  # seeded sampling


# --------------------------------------------------------------------------------------------------
# Streaming token measures: the same values as from generate's stored logits, without storing them
# --------------------------------------------------------------------------------------------------
def reference_sample(model, tokenizer, prompts, *, n, temperature, top_p, max_new_tokens, batch_size, seed):
    """sample() as it was before the streaming measures (``n <= batch_size``, text prompts): generate keeps
    every step's raw logits (``output_logits``), and entropy and -log p come from them at T afterwards."""
    import torch

    texts = list(prompts)
    per_call = batch_size // n
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    model.eval()
    completions, entropies, nlls = [], [], []
    torch.manual_seed(seed)
    try:
        for start in range(0, len(texts), per_call):
            chunk = texts[start : start + per_call]
            enc = tokenizer(text=chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=n,
                    return_dict_in_generate=True,
                    output_logits=True,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new_tokens = gen.sequences[:, enc["input_ids"].shape[1] :]
            logps = (torch.stack(gen.logits, dim=1).float() / temperature).log_softmax(-1)
            entropy = -(logps.exp() * logps).sum(-1)
            nll = -logps.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
            is_eos = new_tokens == tokenizer.eos_token_id
            valid = (is_eos.long().cumsum(1) - is_eos.long()) == 0
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i in range(len(chunk)):
                rows = range(i * n, (i + 1) * n)
                completions.append([decoded[r] for r in rows])
                entropies.append([float(entropy[r][valid[r]].mean()) for r in rows])
                nlls.append([float(nll[r][valid[r]].mean()) for r in rows])
    finally:
        tokenizer.padding_side = padding_side
    return completions, entropies, nlls


def _recorded_generate(model, monkeypatch) -> list[dict]:
    """The keyword arguments of each model.generate call (with the rows it returned as ``rows``)."""
    calls = []
    original = model.generate

    def recording(**kwargs):
        out = original(**kwargs)
        calls.append({**kwargs, "rows": out.sequences.shape[0]})
        return out

    monkeypatch.setattr(model, "generate", recording)
    return calls


def _assert_same_as_reference(model, tokenizer, prompts, monkeypatch, **options):
    expected = reference_sample(model, tokenizer, prompts, **options)
    calls = _recorded_generate(model, monkeypatch)
    samples = sample(model, tokenizer, prompts, **options)
    monkeypatch.undo()
    assert calls and max(call["rows"] for call in calls) <= options["batch_size"]
    for call in calls:  # nothing of size vocabulary x steps is asked for
        assert not call.get("output_logits") and not call.get("output_scores"), call
    completions, entropies, nlls = expected
    assert samples.completions == completions  # the same draws: the measures leave the scores alone
    flat = [value for prompt in entropies for value in prompt]
    assert [value for prompt in samples.mean_entropy for value in prompt] == pytest.approx(flat, abs=1e-5)
    flat = [value for prompt in nlls for value in prompt]
    assert [value for prompt in samples.mean_nll for value in prompt] == pytest.approx(flat, abs=1e-5)
    return samples


@pytest.mark.parametrize(
    "options",
    [
        dict(n=4, temperature=1.0, top_p=1.0, max_new_tokens=12, batch_size=8, seed=0),
        dict(n=3, temperature=0.7, top_p=0.8, max_new_tokens=10, batch_size=6, seed=5),
        dict(n=2, temperature=1.5, top_p=0.95, max_new_tokens=8, batch_size=64, seed=1),
    ],
)
def test_streaming_measures_match_the_stored_logits_on_a_peft_model(monkeypatch, options):
    """A random tiny Llama with a perturbed LoRA adapter (the measures hook the PEFT model's base model) and
    the toy policy's character tokenizer: entropies and -log p as from generate's stored logits, at T and
    before top-p, with the same completions."""
    from stub_rollouts import tiny_model, tokenizer

    model = tiny_model(adapter_scale=0.5)
    samples = _assert_same_as_reference(model, tokenizer(), ["1+2=", "34+5=", "7="], monkeypatch, **options)
    assert len({text for texts in samples.completions for text in texts}) > 3  # sampled, not constant


def test_entropy_and_nll_ignore_the_generation_configs_processors(fixed_policy):
    """A repetition penalty in the model's generation config changes what is sampled, not the measures: they
    are those of the model's own distribution at T, as before."""
    model, tokenizer = fixed_policy
    plain = sample(model, tokenizer, PROMPTS, n=8, max_new_tokens=6, batch_size=16)
    model.generation_config.repetition_penalty = 3.0
    try:
        penalized = sample(model, tokenizer, PROMPTS, n=8, max_new_tokens=6, batch_size=16)
    finally:
        model.generation_config.repetition_penalty = 1.0
    assert penalized.completions != plain.completions  # the penalty did act on sampling
    entropies = [value for prompt in penalized.mean_entropy for value in prompt]
    assert entropies == pytest.approx([ENTROPY_BY_TEMPERATURE[1.0]] * 24, abs=1e-5)
    eos, a, b = NLL_BY_TEMPERATURE[1.0]
    for texts, nlls, truncated in zip(
        penalized.completions, penalized.mean_nll, penalized.truncated, strict=True
    ):
        for text, nll, cut in zip(texts, nlls, truncated, strict=True):
            total = text.count("a") * a + text.count("b") * b + (0 if cut else eos)
            assert nll == pytest.approx(total / (len(text) + (0 if cut else 1)), abs=1e-5), text


@pytest.mark.slow
def test_streaming_measures_match_the_stored_logits_on_the_toy_policy(toy_policy_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uec_repro.evaluation import prompt_texts
    from uec_repro.tasks import load_task

    model = AutoModelForCausalLM.from_pretrained(toy_policy_path)
    tokenizer = AutoTokenizer.from_pretrained(toy_policy_path)
    rows = load_task("arith", "test", n=12, tokenizer=tokenizer)
    prompts = prompt_texts(tokenizer, [row["prompt"] for row in rows])
    for options in (
        dict(n=8, temperature=1.0, top_p=1.0, max_new_tokens=48, batch_size=32, seed=0),
        dict(n=4, temperature=0.6, top_p=0.9, max_new_tokens=48, batch_size=16, seed=3),
    ):
        _assert_same_as_reference(model, tokenizer, prompts, monkeypatch, **options)


@pytest.mark.slow
def test_every_generate_call_of_an_evaluation_on_the_toy_policy_is_at_most_batch_size(
    toy_policy_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uec_repro.tasks import load_task

    model = AutoModelForCausalLM.from_pretrained(toy_policy_path)
    tokenizer = AutoTokenizer.from_pretrained(toy_policy_path)
    test = load_task("arith", "test", n=5, tokenizer=tokenizer)
    for n, batch_size, rows in ((4, 8, [8, 8, 4]), (8, 3, [3, 3, 2] * 5), (4, 4, [4] * 5)):
        calls = _recorded_generate(model, monkeypatch)
        result = evaluate_policy(
            model, tokenizer, test, n=n, ks=(1,), hard_group_size=1, max_new_tokens=8, batch_size=batch_size
        )
        monkeypatch.undo()
        assert [call["rows"] for call in calls] == rows, (n, batch_size)
        assert result.summary["prompts"] == 5 and all(p["n"] == n for p in result.per_prompt)
        assert not any(call.get("output_logits") or call.get("output_scores") for call in calls)
