"""Build a tiny random Gemma 4 (gemma4_unified) model: for tests and the offline smoke card.

The model is the real `Gemma4UnifiedForConditionalGeneration` from transformers with a tiny config
(about 0.2 M parameters) and seeded random weights, so it is deterministic but its output is
gibberish: it rarely emits an end-of-turn token, so callers should use small token budgets. The
tokenizer is an in-memory BPE in Gemma's own layout (byte fallback, "▁" for spaces) carrying the
Gemma 4 special tokens, and the chat template is written here from the documented Gemma 4 prompt
format. Every saved copy is also what llama.cpp's GGUF converter accepts, so the model converted
for llama.cpp and the one transformers loads are the same model with the same tokenizer: the same
prompt gives the same token ids on both backends. The processor is the real
`Gemma4UnifiedProcessor` (image and video processors with the tiny patch size, the audio feature
extractor at 16 kHz / 640 samples per token, and the tokenizer); its image and video processors are
torchvision-backed, so building it needs torchvision (imported only then). Nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers
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
MERGES = (("h", "e"), ("t", "he"), ("▁", "the"), ("i", "n"), ("a", "n"), ("e", "r"), ("o", "n"), ("▁", "a"))

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
    """A BPE tokenizer with the specials at ids 0..15, in Gemma's layout (`_gemma_style_tokenizer`)."""
    raw = _gemma_style_tokenizer()
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


def _gemma_style_tokenizer() -> Tokenizer:
    """Gemma's tokenizer layout, which llama.cpp's converter requires for gemma4: BPE with byte
    fallback (`<0x00>`..`<0xFF>`), spaces normalised to "▁", no pre-tokenizer, then printable
    ASCII, newline and "▁" as symbols, then merges."""
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIALS)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for symbol in ["▁", "\n", *(chr(c) for c in range(33, 127))]:
        vocab.setdefault(symbol, len(vocab))
    for left, right in MERGES:
        vocab.setdefault(left + right, len(vocab))
    raw = Tokenizer(models.BPE(vocab=vocab, merges=list(MERGES), unk_token="<unk>", byte_fallback=True))
    raw.normalizer = normalizers.Replace(" ", "▁")
    raw.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return raw


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
    `with_processor` the processor too, so that `AutoProcessor.from_pretrained(path)` works.

    The directory is ready for llama.cpp's converter as well: every Gemma 4 special token is listed
    as special in tokenizer_config.json (llama.cpp parses only tokens the tokenizer lists as
    special, e.g. `<|turn>`, as control tokens in prompts), and config.json is patched by
    `patch_config_for_llama_cpp` (keys transformers ignores)."""
    path = Path(path)
    model, tokenizer = build_tiny_gemma4(seed)
    model.save_pretrained(path)
    if with_processor:
        build_processor(tokenizer).save_pretrained(path)  # saves the tokenizer with it
    else:
        tokenizer.save_pretrained(path)
    tokenizer_config = path / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text())
    extra = settings.get("extra_special_tokens") or []
    settings["extra_special_tokens"] = extra + [t for t in SPECIALS if t not in extra]
    tokenizer_config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    patch_config_for_llama_cpp(path)
    return path


def save_tiny_gemma4_gguf_ready(path: str | Path, seed: int = 0) -> Path:
    """The tiny model with its processor, for llama.cpp's converter: `save_tiny_gemma4`, which
    every saved copy is (kept as a name for the converting callers)."""
    return save_tiny_gemma4(path, seed, with_processor=True)


def patch_config_for_llama_cpp(path: str | Path) -> None:
    """Add back to config.json's text_config the keys llama.cpp's converter reads and transformers
    does not write: `global_head_dim`, `expert_intermediate_size` (null), `enable_moe_block` (false)."""
    config_path = Path(path) / "config.json"
    config = json.loads(config_path.read_text())
    text = config["text_config"]
    head_dim = text.get("global_head_dim") or _full_attention_head_dim(text)
    text.update({"global_head_dim": head_dim, "expert_intermediate_size": None, "enable_moe_block": False})
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _full_attention_head_dim(text_config: dict[str, Any]) -> int:
    per_layer = text_config.get("per_layer_config") or {}
    for index, layer_type in enumerate(text_config.get("layer_types", [])):
        layer = per_layer.get(str(index), {})
        if layer_type == "full_attention" and "head_dim" in layer:
            return int(layer["head_dim"])
    raise ValueError("config.json has no full-attention head_dim; save the model with transformers >= 5.24")


# --- tiny MTP drafter (Gemma4UnifiedAssistant) -------------------------------------------------
# The drafter cross-attends to the target's KV cache, so its per-layer-type head sizes and KV head
# counts must equal the target's, and `backbone_hidden_size` must equal the target's hidden size.
# Its own hidden size may be smaller. With random weights it drafts gibberish (acceptance near 0),
# which still exercises the whole assisted-generation path.


def _layer_attention(text_config: Any, layer_type: str) -> tuple[int, int]:
    """(head_dim, kv heads) of the first `layer_type` layer of a gemma4_unified text config."""
    index = list(text_config.layer_types).index(layer_type)
    layer = text_config.per_layer_config[index]
    return int(layer.head_dim), int(layer.num_key_value_heads)


def build_tiny_gemma4_assistant(target_config: Any, seed: int = 0) -> Any:
    """A tiny random `Gemma4UnifiedAssistantForCausalLM` (eval mode, float32) that fits the target
    whose config (`Gemma4UnifiedConfig` or its text config) is given; the same `seed` gives the
    same weights."""
    from transformers import (
        Gemma4UnifiedAssistantConfig,
        Gemma4UnifiedAssistantForCausalLM,
        Gemma4UnifiedTextConfig,
    )

    target = target_config.get_text_config()
    head_dim, kv_heads = _layer_attention(target, "sliding_attention")
    global_head_dim, global_kv_heads = _layer_attention(target, "full_attention")
    text = Gemma4UnifiedTextConfig(
        vocab_size=target.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        global_head_dim=global_head_dim,
        num_global_key_value_heads=global_kv_heads,
        attention_k_eq_v=bool(target.attention_k_eq_v),
        sliding_window=target.sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=target.max_position_embeddings,
        rope_parameters=target.rope_parameters,
        pad_token_id=target.pad_token_id,
        bos_token_id=target.bos_token_id,
        eos_token_id=target.eos_token_id,
    )
    config = Gemma4UnifiedAssistantConfig(text_config=text, backbone_hidden_size=target.hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma4UnifiedAssistantForCausalLM(config)
    return model.eval()


def save_tiny_gemma4_assistant(
    path: str | Path, target_dir_or_model: str | Path | Any, seed: int = 0
) -> Path:
    """Save a tiny drafter for a target (a saved model directory, or a loaded model) to `path`, a
    directory that `Gemma4UnifiedAssistantForCausalLM.from_pretrained` and HFBackend's `draft_model`
    accept."""
    if isinstance(target_dir_or_model, str | Path):
        from transformers import AutoConfig

        target_config = AutoConfig.from_pretrained(target_dir_or_model)
    else:
        target_config = target_dir_or_model.config
    path = Path(path)
    build_tiny_gemma4_assistant(target_config, seed).save_pretrained(path)
    return path


def save_tiny_gemma4_assistant_gguf_ready(path: str | Path, target_dir: str | Path, seed: int = 0) -> Path:
    """Save the tiny drafter for the target in `target_dir` (saved by `save_tiny_gemma4_gguf_ready`)
    in a form llama.cpp's converter accepts: with the target's tokenizer files next to it (the
    converter reads the vocabulary from them; the drafter shares the target's) and the config
    patched by `patch_config_for_llama_cpp`. It does not convert; see `runners.gguf_convert`."""
    target_dir = Path(target_dir)
    path = save_tiny_gemma4_assistant(path, target_dir, seed)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(target_dir / name, path / name)
    patch_config_for_llama_cpp(path)
    return path
