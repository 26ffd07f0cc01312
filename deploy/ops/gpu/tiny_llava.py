#!/usr/bin/env python3
"""Helpers of deploy/ops/gpu/check.sh: a tiny randomly initialised LLaVA-style model built offline,
trainer work directories for it, and checks of what the trainer wrote.

    tiny_llava.py versions [--allow-cpu]
    tiny_llava.py build --out DIR
    tiny_llava.py workdir --dir DIR [--pairs 6] [--batch-size 3] [--lr 1e-2] [--sft-weight 1]
                          [--iteration 1] [--init-adapter DIR]
    tiny_llava.py verify --base DIR --work DIR --steps N [--init DIR] [--pairs N]
    tiny_llava.py same --work DIR --init DIR
    tiny_llava.py report DIR...

Nothing is downloaded: the tokenizer is a word-level `tokenizers` model trained on the few words
the check's questions and answers use, the image processor and the model are built from configs.
Every failed expectation exits non-zero with a message that says what was expected.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TRAINER_DIR = REPO / "actors" / "openai" / "trainer"

IMAGE = 32  # pixels per side
PATCH = 8  # CLIP patch size: (32 / 8)^2 = 16 patches, so 16 image tokens once CLS is dropped
IMAGE_TOKENS = (IMAGE // PATCH) ** 2
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40), "white": (245, 245, 245), "black": (15, 15, 15)}
QUESTION = "what color is the picture ?"
# One line of Jinja, with newlines only as expressions: Hugging Face renders templates with
# trim_blocks/lstrip_blocks, which would eat newlines written after block tags.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' }}{% else %}{{ 'ASSISTANT: ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image> ' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ ' ' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def die(message: str) -> None:
    print(f"tiny_llava: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def expect(condition: bool, message: str) -> None:
    if not condition:
        die(message)


def say(message: str) -> None:
    print(f"[tiny_llava] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> None:
    try:
        import peft
        import PIL
        import tokenizers
        import torch
        import transformers
    except ImportError as error:
        die(f"{error.name} is not importable by {sys.executable}: the GPU host needs torch, transformers, peft, tokenizers and pillow")
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    info = {
        "python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "tokenizers": tokenizers.__version__, "pillow": PIL.__version__,
        "cuda": torch.version.cuda if cuda else None, "device": device,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
    }
    print(json.dumps(info))
    expect(cuda or args.allow_cpu, "torch sees no CUDA device (set POP_CHECK_ALLOW_CPU=1 to run the check on the CPU anyway)")


def build_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ["USER : ASSISTANT :", QUESTION, " ".join(COLORS), "it is the picture of a color"]
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    # Special tokens are matched in running text before pre-tokenization, so "<image><image>"
    # (the processor's expansion) becomes one token per image slot.
    backend.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = tokenizer.encode("<image><image> red", add_special_tokens=False)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    expect(ids[:2] == [image_id, image_id] and len(ids) == 3, f"tokenizer splits '<image><image> red' into {ids}, expected [{image_id}, {image_id}, <red>]")
    return tokenizer


def build_image_processor() -> Any:
    import transformers

    kwargs = dict(
        size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}, do_resize=True, do_center_crop=True,
        do_rescale=True, do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True,
    )
    errors = []
    # The PIL/numpy class first; transformers 5 may name that one ...Pil and make the plain name
    # the torchvision one, which fails to construct without torchvision.
    for name in ("CLIPImageProcessor", "CLIPImageProcessorPil", "CLIPImageProcessorFast"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            return cls(**kwargs)
        except Exception as error:  # noqa: BLE001 (a missing optional backend raises ImportError or worse)
            errors.append(f"{name}: {error}")
    die("no CLIP image processor could be built: " + "; ".join(errors))


def llava_config(vision: Any, text: Any, image_id: int) -> Any:
    import inspect

    from transformers import LlavaConfig

    params = inspect.signature(LlavaConfig.__init__).parameters
    key = "image_token_index" if "image_token_index" in params or "image_token_id" not in params else "image_token_id"
    config = LlavaConfig(
        vision_config=vision, text_config=text, projector_hidden_act="gelu", vision_feature_select_strategy="default",
        vision_feature_layer=-2, image_seq_length=IMAGE_TOKENS, **{key: image_id},
    )
    # The model reads config.image_token_id (an alias of image_token_index in transformers 4.5x/5.x).
    if getattr(config, "image_token_id", None) != image_id:
        config.image_token_id = image_id
    return config


def tiny_images() -> dict[str, Any]:
    from PIL import Image, ImageDraw

    images = {}
    for i, (name, rgb) in enumerate(COLORS.items()):
        img = Image.new("RGB", (IMAGE, IMAGE), rgb)
        # A small dark square in a different place each time, so no two images are flat copies.
        ImageDraw.Draw(img).rectangle([4 * i % 24, 8, 4 * i % 24 + 6, 14], fill=(0, 0, 0) if name != "black" else (255, 255, 255))
        images[name] = img
    return images


def conversation(answer: str | None = None, images: int = 1) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "image"}] * images + [{"type": "text", "text": QUESTION}]}]
    if answer is not None:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return turns


def cmd_build(args: argparse.Namespace) -> None:
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaForConditionalGeneration, LlavaProcessor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    processor = LlavaProcessor(
        image_processor=build_image_processor(), tokenizer=tokenizer, patch_size=PATCH,
        vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE, image_token="<image>",
        num_additional_image_tokens=1,  # CLIP's CLS token, which "default" drops again
    )
    if getattr(processor, "image_token", "<image>") != "<image>":
        processor.image_token = "<image>"
    vision = CLIPVisionConfig(
        image_size=IMAGE, patch_size=PATCH, num_channels=3, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    model = LlavaForConditionalGeneration(llava_config(vision, text, image_id))
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"built a {n_params:,}-parameter LLaVA (CLIP {IMAGE}px/{PATCH}px patches + Llama, vocab {len(tokenizer)}) in {out}")

    # Load it back the way the trainer does and run one conversation through it.
    sys.path.insert(0, str(TRAINER_DIR))
    from simpo_lora import load_model

    processor2, model2 = load_model(str(out), torch.float32, torch.device("cpu"))
    expect(bool(getattr(processor2, "chat_template", None)), "the reloaded processor has no chat template (chat_template.jinja/json not saved or not read)")
    text_in = processor2.apply_chat_template(conversation("red"), tokenize=False, add_generation_prompt=False)
    text_in = text_in[0] if isinstance(text_in, list) else text_in
    expect(text_in.count("<image>") == 1 and "ASSISTANT: red" in text_in, f"chat template rendered {text_in!r}")
    inputs = processor2(text=[text_in], images=[tiny_images()["red"]], return_tensors="pt", add_special_tokens=False)
    n_image = int((inputs["input_ids"] == image_id).sum())
    expect(n_image == IMAGE_TOKENS, f"the processor expanded <image> into {n_image} tokens, the vision tower gives {IMAGE_TOKENS} features (patch_size / num_additional_image_tokens / vision_feature_select_strategy disagree)")
    expect(tuple(inputs["pixel_values"].shape) == (1, 3, IMAGE, IMAGE), f"pixel_values {tuple(inputs['pixel_values'].shape)}, expected (1, 3, {IMAGE}, {IMAGE})")
    with torch.no_grad():
        logits = model2(**{k: v for k, v in inputs.items() if hasattr(v, "shape")}).logits
    expect(tuple(logits.shape) == (1, inputs["input_ids"].shape[1], len(tokenizer)), f"logits {tuple(logits.shape)}")
    say(f"reloaded: {type(processor2).__name__} + {type(model2).__name__}; '{text_in.strip()}' is {inputs['input_ids'].shape[1]} tokens ({n_image} image tokens); forward ok")


def cmd_workdir(args: argparse.Namespace) -> None:
    work = Path(args.dir).resolve()
    (work / "images").mkdir(parents=True, exist_ok=True)
    (work / "adapter").mkdir(exist_ok=True)
    names = list(COLORS)
    lines = []
    images = tiny_images()
    for i in range(args.pairs):
        color = names[i % len(names)]
        wrong = names[(i + 3) % len(names)]
        path = f"images/{color}.png"
        images[color].save(work / path)
        record = {
            "prompt": conversation(None),
            "chosen": [{"role": "assistant", "content": [{"type": "text", "text": f"it is {color}"}]}],
            "rejected": [{"role": "assistant", "content": [{"type": "text", "text": f"{wrong} {wrong} {wrong}"}]}],
            "images": [path],
            "prompt_id": f"p{i}",
            "score_chosen": 0.9,
            "score_rejected": 0.1,
        }
        lines.append(json.dumps(record))
    (work / "pairs.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    settings = {
        "format": "pop-trainer/1",
        "experiment": "gpu-check",
        "peer": "tiny-llava",
        "iteration": args.iteration,
        "base_model": "tiny-llava",
        "init_adapter": str(Path(args.init_adapter).resolve()) if args.init_adapter else None,
        "pairs": str(work / "pairs.jsonl"),
        "pair_count": args.pairs,
        "output_dir": str(work / "adapter"),
        "metrics": str(work / "metrics.json"),
        "simpo": {"beta": 2.0, "gamma": 0.5, "learning_rate": args.lr, "epochs": 1, "batch_size": args.batch_size, "sft_weight": args.sft_weight, "seed": 0},
    }
    (work / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    say(f"work dir {work}: {args.pairs} pairs, batch {args.batch_size}, init {settings['init_adapter']}")


def read_metrics(work: Path) -> dict[str, float]:
    path = work / "metrics.json"
    expect(path.is_file(), f"{path} was not written")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    for key in ("steps", "pairs", "loss_first", "loss_last", "margin_before", "margin_after", "seconds"):
        value = metrics.get(key)
        expect(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), f"metrics.json {key} is {value!r}, expected a finite number")
    expect(metrics["seconds"] >= 0, "metrics.json seconds is negative")
    return metrics


def adapter_tensors(adapter: Path) -> dict[str, Any]:
    expect((adapter / "adapter_config.json").is_file(), f"{adapter}/adapter_config.json missing")
    if (adapter / "adapter_model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(adapter / "adapter_model.safetensors"))
    expect((adapter / "adapter_model.bin").is_file(), f"{adapter} has neither adapter_model.safetensors nor adapter_model.bin")
    import torch

    return torch.load(adapter / "adapter_model.bin", map_location="cpu")


def cmd_verify(args: argparse.Namespace) -> None:
    import torch

    work = Path(args.work)
    metrics = read_metrics(work)
    expect(metrics["steps"] == args.steps, f"metrics.json steps {metrics['steps']}, expected {args.steps}")
    expect(metrics["pairs"] == args.pairs, f"metrics.json pairs {metrics['pairs']}, expected {args.pairs}")
    expect(metrics["loss_first"] > 0 and metrics["loss_last"] > 0, "losses must be positive (softplus + NLL)")
    expect(metrics["margin_after"] != metrics["margin_before"], "margin_after equals margin_before: training changed nothing")

    adapter = work / "adapter"
    tensors = adapter_tensors(adapter)
    lora_b = {k: v for k, v in tensors.items() if "lora_B" in k}
    expect(len(lora_b) > 0, f"no lora_B tensors in the adapter (keys: {sorted(tensors)[:6]}...)")
    b_max = max(float(v.float().abs().max()) for v in lora_b.values())
    # peft starts B at zero, so any non-zero B entry was learnt.
    expect(b_max > 0, "every lora_B is zero: the optimizer never moved the adapter")
    vision = [k for k in tensors if "vision_tower" in k or "multi_modal_projector" in k]
    expect(not vision, f"LoRA tensors on the vision side: {vision[:3]} (expected the language model only)")
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))

    changed = None
    if args.init:
        init = adapter_tensors(Path(args.init))
        expect(set(init) == set(tensors), "the continued adapter has other tensors than the one it started from")
        changed = max(float((tensors[k].float() - init[k].float()).abs().max()) for k in tensors)
        expect(changed > 0, "the continued adapter equals its init_adapter: the second iteration did not train")

    # Load base + adapter as a server would and check the adapter changes the output.
    sys.path.insert(0, str(TRAINER_DIR))
    from peft import PeftModel
    from simpo_lora import load_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    processor, base = load_model(args.base, torch.float32, device)
    text = processor.apply_chat_template(conversation("it is red"), tokenize=False, add_generation_prompt=False)
    text = text[0] if isinstance(text, list) else text
    inputs = processor(text=[text], images=[tiny_images()["red"]], return_tensors="pt", add_special_tokens=False)
    inputs = {k: v.to(device) for k, v in inputs.items() if hasattr(v, "to")}
    base.eval()
    with torch.no_grad():
        before = base(**inputs).logits.float()
        model = PeftModel.from_pretrained(base, str(adapter))
        model.eval()
        after = model(**inputs).logits.float()
    shift = float((after - before).abs().max())
    expect(shift > 0, "base + adapter gives the same logits as the base: the adapter is not applied")

    summary = {
        "work": str(work), **metrics, "lora_B_tensors": len(lora_b), "lora_B_max_abs": b_max, "rank": config.get("r"),
        "target_modules": config.get("target_modules"), "changed_vs_init": changed, "logit_shift": shift,
    }
    (work / "verify.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    say(f"verified {work.name}: steps {metrics['steps']}, loss {metrics['loss_first']:.4f} -> {metrics['loss_last']:.4f}, margin {metrics['margin_before']:+.4f} -> {metrics['margin_after']:+.4f}, {len(lora_b)} lora_B (max |B| {b_max:.2e}), logit shift {shift:.2e}" + (f", max change vs init {changed:.2e}" if changed is not None else ""))


def cmd_same(args: argparse.Namespace) -> None:
    work = Path(args.work)
    metrics = read_metrics(work)
    expect(metrics["steps"] == 0 and metrics["pairs"] == 0, f"an empty pairs file should give steps 0 and pairs 0, got {metrics['steps']} and {metrics['pairs']}")
    got, want = adapter_tensors(work / "adapter"), adapter_tensors(Path(args.init))
    expect(set(got) == set(want) and all(bool((got[k] == want[k]).all()) for k in want), "with no pairs the adapter should be init_adapter unchanged")
    (work / "verify.json").write_text(json.dumps({"work": str(work), **metrics, "unchanged": True}, indent=2) + "\n", encoding="utf-8")
    say(f"verified {work.name}: no pairs -> steps 0, init_adapter copied unchanged ({len(got)} tensors)")


def cmd_report(args: argparse.Namespace) -> None:
    rows = []
    for d in args.dirs:
        path = Path(d) / "verify.json"
        expect(path.is_file(), f"{path} missing")
        rows.append(json.loads(path.read_text(encoding="utf-8")))
    print(f"{'run':<10} {'steps':>5} {'pairs':>5} {'seconds':>8} {'loss first':>11} {'loss last':>10} {'margin before':>14} {'margin after':>13}")
    for r in rows:
        print(f"{Path(r['work']).name:<10} {r['steps']:>5} {r['pairs']:>5} {r['seconds']:>8.1f} {r['loss_first']:>11.4f} {r['loss_last']:>10.4f} {r['margin_before']:>+14.4f} {r['margin_after']:>+13.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("versions")
    s.add_argument("--allow-cpu", action="store_true", default=bool(os.environ.get("POP_CHECK_ALLOW_CPU")))
    s = sub.add_parser("build")
    s.add_argument("--out", required=True)
    s = sub.add_parser("workdir")
    s.add_argument("--dir", required=True)
    s.add_argument("--pairs", type=int, default=6)
    s.add_argument("--batch-size", type=int, default=3)
    s.add_argument("--lr", type=float, default=1e-2)
    s.add_argument("--sft-weight", type=float, default=1.0)
    s.add_argument("--iteration", type=int, default=1)
    s.add_argument("--init-adapter")
    s = sub.add_parser("verify")
    s.add_argument("--base", required=True)
    s.add_argument("--work", required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--pairs", type=int, default=6)
    s.add_argument("--init")
    s = sub.add_parser("same")
    s.add_argument("--work", required=True)
    s.add_argument("--init", required=True)
    s = sub.add_parser("report")
    s.add_argument("dirs", nargs="+")
    args = p.parse_args()
    started = time.monotonic()
    {"versions": cmd_versions, "build": cmd_build, "workdir": cmd_workdir, "verify": cmd_verify, "same": cmd_same, "report": cmd_report}[args.command](args)
    if args.command not in ("versions", "report"):
        say(f"{args.command} took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
