"""A tiny Qwen2-VL with random weights (seeded, ~1.5 MB, no download) for tests and CPU benchmarks.

Its answers are meaningless, but vLLM serves it through the real image path and structured output.
Run with the VLM environment's interpreter (it needs transformers and torch)::

    .venv-vlm/bin/python -m surveillance_ray.testing.tiny_vlm OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or part['type'] == 'image_url' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
MAX_PIXELS = 224 * 224


def _corpus() -> list[str]:
    """ASCII text from this package's sources and JSON-ish strings (the answers' alphabet)."""
    root = Path(__file__).resolve().parents[1]
    texts = [p.read_text(errors="ignore") for p in sorted(root.rglob("*.py"))]
    texts.append('{"threat_level": "none", "is_false_positive": true, "description": "", "confidence": 0.5, '
                 '"recommended_action": "monitor"} 0123456789 {}[]:,."')
    return ["".join(c for c in t if 32 <= ord(c) < 127 or c == "\n") for t in texts]


def build(out: Path, seed: int = 0) -> Path:
    """Write the model, tokenizer and processor to ``out``; returns ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # an ASCII-only alphabet: a full byte alphabet lets the grammar emit lone UTF-8 continuation bytes
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=SPECIAL, show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=CHAT_TEMPLATE)
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    config = Qwen2VLConfig(
        text_config={"vocab_size": tok.get_vocab_size(), "hidden_size": 128, "intermediate_size": 256,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
                     "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0,
                                         "mrope_section": [8, 12, 12]},
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config={"depth": 2, "embed_dim": 64, "hidden_size": 128, "num_heads": 2, "mlp_ratio": 2},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out)
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=MAX_PIXELS),
                                 video_processor=Qwen2VLVideoProcessor(), tokenizer=tokenizer,
                                 chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"], "do_sample": False}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.seed))


if __name__ == "__main__":
    main()
