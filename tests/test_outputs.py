"""Splitting decoded outputs into reasoning and final answer (Gemma 4 channels, <think> tags)."""

from runners.outputs import split_output


def test_gemma4_thought_and_answer_are_split() -> None:
    out = split_output("<|channel>thought\nLet me think. The answer is (A)<channel|>The answer is (B)<turn|>")
    assert out.answer == "The answer is (B)"
    assert out.reasoning == "Let me think. The answer is (A)"
    assert not out.thought_open


def test_empty_thought_block_with_thinking_off() -> None:
    out = split_output("<|channel>thought\n<channel|>Paris.<turn|><eos>")
    assert out.answer == "Paris."
    assert out.reasoning == ""
    assert not out.thought_open


def test_unclosed_thought_is_open_and_has_no_answer() -> None:
    out = split_output("<|channel>thought\nStep 1 ... the answer is (C) but wait")
    assert out.thought_open
    assert out.answer == ""
    assert out.reasoning is not None and "Step 1" in out.reasoning


def test_template_supplied_opening_only_close_in_output() -> None:
    # With thinking off the prompt ends in the empty channel; some servers return only what follows.
    out = split_output("reasoning leaked<channel|>final")
    assert out.answer == "final"
    assert out.reasoning == "reasoning leaked"


def test_think_tags_and_plain_text() -> None:
    tagged = split_output("<think>hmm</think>\nThe answer is (D)<|im_end|>")
    assert (tagged.answer, tagged.reasoning, tagged.thought_open) == ("The answer is (D)", "hmm", False)
    assert split_output("<think>never closed").thought_open
    plain = split_output("  The answer is (E)<|im_end|>")
    assert (plain.answer, plain.reasoning) == ("The answer is (E)", None)


def test_padding_and_several_end_markers_are_removed() -> None:
    out = split_output("<pad><pad><|channel>thought\nx<channel|>y<turn|>\n<eos><pad>")
    assert out.answer == "y"


def test_error_completion_is_one_line_for_every_backend() -> None:
    from evals.schema import Message, Request, Sampling
    from runners.outputs import error_completion, error_message

    request = Request(key="k/0", sample_id="k", repeat=0, sampling=Sampling(), messages=(Message.user("hi"),))
    failed = error_completion(
        request, RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"), prompt_tokens=7
    )
    assert (failed.key, failed.text, failed.finish_reason, failed.prompt_tokens) == ("k/0", "", "error", 7)
    assert failed.error == "RuntimeError: CUDA out of memory."
    assert error_message(ValueError()) == "ValueError"
    assert len(error_message(ValueError("x" * 1000))) == 300
    timed_out = error_completion(request, "no response within 5 s", seconds=5.0, timed_out=True)
    assert (timed_out.finish_reason, timed_out.error, timed_out.seconds) == (
        "timeout",
        "no response within 5 s",
        5.0,
    )
