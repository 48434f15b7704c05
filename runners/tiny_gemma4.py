"""Build a tiny random Gemma 4 (gemma4_unified) model: for tests and the offline smoke card.

The model is the real `Gemma4UnifiedForConditionalGeneration` from transformers with a tiny config
(about 0.2 M parameters) and seeded random weights, so it is deterministic but its output is
gibberish: it rarely emits an end-of-turn token, so callers should use small token budgets. The
tokenizer is an in-memory byte-level BPE carrying the Gemma 4 special tokens, and the chat template
is written here from the documented Gemma 4 prompt format. The processor is the real
`Gemma4UnifiedProcessor` (image and video processors with the tiny patch size, the audio feature
extractor at 16 kHz / 640 samples per token, and the tokenizer); its image and video processors are
torchvision-backed, so building it needs torchvision (imported only then). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    Gemma4UnifiedAudioConfig,
    Gemma4UnifiedAudioFeatureExtractor,
    Gemma4UnifiedConfig,
    Gemma4UnifiedForConditionalGeneration,
    Gemma4UnifiedProcessor,
    Gemma4UnifiedTextConfig,
    Gemma4UnifiedVisionConfig,
    PreTrainedTokenizerFast,
)

PATCH_SIZE = 4  # pixels per side of a teacher patch (the real model uses 16)
POOLING_KERNEL_SIZE = 3  # teacher patches merged per side into one soft token
AUDIO_SAMPLES_PER_TOKEN = 640  # 40 ms at 16 kHz, as in the real model

SPECIALS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<|turn>",
    "<turn|>",
    "<|image>",
    "<image|>",
    "<|image|>",
    "<|audio>",
    "<audio|>",
    "<|audio|>",
    "<|video|>",
    "<|think|>",
    "<|channel>",
    "<channel|>",
)

# A few merges so that common words become single tokens, as in a real BPE vocabulary.
MERGES = (("h", "e"), ("t", "he"), ("Ġ", "the"), ("i", "n"), ("a", "n"), ("e", "r"), ("o", "n"), ("Ġ", "a"))

# Gemma 4 chat format: `<bos><|turn>system\n<|think|>...<turn|>\n<|turn>user\n...<turn|>\n<|turn>model\n`.
# Thinking on puts `<|think|>` at the start of a system turn (emitted even without a system message);
# thinking off appends the empty thought channel to the generation prompt. Role assistant -> model.
CHAT_TEMPLATE = r"""
{%- macro render_content(content) -%}
  {%- if content is string -%}{{ content }}
  {%- else -%}
    {%- for part in content -%}
      {%- if part['type'] == 'text' -%}{{ part['text'] }}
      {%- elif part['type'] == 'image' -%}{{ '\n\n<|image|>\n\n' }}
      {%- elif part['type'] == 'audio' -%}{{ '<|audio|>' }}
      {%- elif part['type'] == 'video' -%}{{ '\n\n<|video|>\n\n' }}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro -%}
{{- bos_token -}}
{%- set thinking = enable_thinking is defined and enable_thinking -%}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set system_text = render_content(messages[0]['content']) -%}
  {%- set turns = messages[1:] -%}
{%- else -%}
  {%- set system_text = '' -%}
  {%- set turns = messages -%}
{%- endif -%}
{%- if thinking or system_text -%}
  {{- '<|turn>system\n' -}}{%- if thinking -%}{{ '<|think|>' }}{%- endif -%}{{- system_text -}}{{- '<turn|>\n' -}}
{%- endif -%}
{%- for message in turns -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{- '<|turn>' + role + '\n' -}}{{- render_content(message['content']) -}}{{- '<turn|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|turn>model\n' -}}
  {%- if not thinking -%}{{- '<|channel>thought\n<channel|>' -}}{%- endif -%}
{%- endif -%}
"""


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer: specials at ids 0..15, then the 256 byte symbols, then merges."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIALS)}
    for symbol in sorted(alphabet):
        vocab.setdefault(symbol, len(vocab))
    for left, right in MERGES:
        vocab.setdefault(left + right, len(vocab))
    raw = Tokenizer(models.BPE(vocab=vocab, merges=list(MERGES), unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens(list(SPECIALS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        add_bos_token=True,
        extra_special_tokens={
            "image_token": "<|image|>",
            "boi_token": "<|image>",
            "eoi_token": "<image|>",
            "audio_token": "<|audio|>",
            "boa_token": "<|audio>",
            "eoa_token": "<audio|>",
        },
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_config(tokenizer: PreTrainedTokenizerFast) -> Gemma4UnifiedConfig:
    """A tiny gemma4_unified config whose special ids match `tokenizer`."""
    ids = tokenizer.convert_tokens_to_ids
    text = Gemma4UnifiedTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        global_head_dim=64,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=2048,
        pad_token_id=ids("<pad>"),
        bos_token_id=ids("<bos>"),
        eos_token_id=[ids("<eos>"), ids("<turn|>")],
    )
    return Gemma4UnifiedConfig(
        text_config=text,
        vision_config=Gemma4UnifiedVisionConfig(
            patch_size=PATCH_SIZE,
            pooling_kernel_size=POOLING_KERNEL_SIZE,
            mm_embed_dim=64,
            mm_posemb_size=64,
            output_proj_dims=64,
        ),
        audio_config=Gemma4UnifiedAudioConfig(audio_embed_dim=AUDIO_SAMPLES_PER_TOKEN),
        boi_token_id=ids("<|image>"),
        eoi_token_id=ids("<image|>"),
        image_token_id=ids("<|image|>"),
        video_token_id=ids("<|video|>"),
        boa_token_id=ids("<|audio>"),
        eoa_token_index=ids("<audio|>"),
        audio_token_id=ids("<|audio|>"),
    )


def build_tiny_gemma4(seed: int = 0) -> tuple[Gemma4UnifiedForConditionalGeneration, PreTrainedTokenizerFast]:
    """The tiny model (eval mode, float32) and its tokenizer; the same `seed` gives the same weights."""
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma4UnifiedForConditionalGeneration(config)
    return model.eval(), tokenizer


def build_processor(tokenizer: PreTrainedTokenizerFast, max_soft_tokens: int = 280) -> Gemma4UnifiedProcessor:
    """The real Gemma 4 processor around `tokenizer`, sized for the tiny vision config. Needs
    torchvision. (The processor registers `<|video|>` as a special token of `tokenizer`.)"""
    from transformers import Gemma4UnifiedImageProcessor, Gemma4UnifiedVideoProcessor

    patches = {"patch_size": PATCH_SIZE, "pooling_kernel_size": POOLING_KERNEL_SIZE}
    return Gemma4UnifiedProcessor(
        feature_extractor=Gemma4UnifiedAudioFeatureExtractor(
            feature_size=AUDIO_SAMPLES_PER_TOKEN, audio_samples_per_token=AUDIO_SAMPLES_PER_TOKEN
        ),
        image_processor=Gemma4UnifiedImageProcessor(max_soft_tokens=max_soft_tokens, **patches),
        tokenizer=tokenizer,
        video_processor=Gemma4UnifiedVideoProcessor(**patches),
        chat_template=CHAT_TEMPLATE,
    )


def save_tiny_gemma4(path: str | Path, seed: int = 0, with_processor: bool = True) -> Path:
    """Save model, tokenizer and chat template to `path` (a directory HFBackend can load), and with
    `with_processor` the processor too, so that `AutoProcessor.from_pretrained(path)` works."""
    path = Path(path)
    model, tokenizer = build_tiny_gemma4(seed)
    model.save_pretrained(path)
    if with_processor:
        build_processor(tokenizer).save_pretrained(path)  # saves the tokenizer with it
    else:
        tokenizer.save_pretrained(path)
    return path
