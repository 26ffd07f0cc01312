#!/usr/bin/env python3
"""SimPO LoRA trainer for LLaVA-style vision-language models (transformers + peft).

It implements the trainer contract of actors/trainers/contract.ts: the actor writes a work
directory (settings.json, pairs.jsonl in TRL's conversational vision shape with image paths
relative to the work directory, images/) and runs this program with POP_TRAIN_DIR set; it writes
a peft LoRA adapter into settings.output_dir (continuing settings.init_adapter when set) and then,
last, metrics.json.

TRL's CPOTrainer (its SimPO) takes no images, so this is its own small loop: the processor's chat
template renders prompt+chosen and prompt+rejected with the pair's images, prompt tokens are
masked, and simpo.py turns the answers' length-normalised log-probs into the SimPO(+NLL) loss.
No reference model is needed, so one copy of the weights is on the GPU.

    python3 actors/trainers/python/simpo_lora.py --base-model llava-hf/llava-1.5-7b-hf \
        [--work-dir DIR (default $POP_TRAIN_DIR)] [--lora-rank 16] [--lora-alpha 32] \
        [--lora-dropout 0.05] [--target-modules q_proj,k_proj,v_proj,o_proj] [--bf16|--no-bf16] \
        [--grad-accum N] [--micro-batch 1] [--max-length 2048] [--device auto]

Exit status 0 on success, 2 on a problem with the inputs (one line on stderr says which), 1 on a
crash (traceback). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:  # torch is imported lazily, so that --help and input errors need no torch
    import torch

TRAINER_FORMAT = "pop-trainer/1"
DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj"
#: Module-name parts of the vision side of LLaVA-style models (vision tower, projector). LoRA goes
#: on the language model only: vLLM serves LoRA for the language model of multimodal models, and
#: what the panel teaches is how to answer, not how to see.
VISION_PARTS = ("vision_tower", "vision_model", "visual", "multi_modal_projector", "mm_projector", "image_newline")
#: Processor outputs that run along the token axis (padded per sequence); all others (pixel
#: values, image sizes, ...) are per image and are concatenated.
PER_TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


class TrainerError(Exception):
    """A problem with the inputs or the set-up: reported as one line, exit status 2."""


def log(message: str) -> None:
    print(f"[simpo_lora] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The work directory


@dataclass
class Settings:
    """settings.json, paths resolved; the ``simpo`` fields flattened under the file's names.

    The fields and their meanings are the contract's: ``TrainSettings`` and ``SIMPO_FILE_KEYS``
    in actors/trainers/contract.ts (each SimPO setting is documented once, in the experiment's
    TrainingConfig, protocol/schemas.ts). An absent ``sft_weight`` is 0, as the contract reads it.
    """

    work_dir: Path
    base_model: str
    init_adapter: Optional[Path]
    pairs: Path
    output_dir: Path
    metrics: Path
    beta: float
    gamma: float
    learning_rate: float
    epochs: float
    batch_size: int
    sft_weight: float
    seed: int


def read_settings(work_dir: Path) -> Settings:
    path = work_dir / "settings.json"
    if not path.is_file():
        raise TrainerError(f"{path} not found: --work-dir (or POP_TRAIN_DIR) must be a trainer work directory (see actors/trainers/contract.ts)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TrainerError(f"{path} is not JSON: {error}") from None
    if raw.get("format") != TRAINER_FORMAT:
        raise TrainerError(f"{path}: format is {raw.get('format')!r}, this trainer reads {TRAINER_FORMAT!r}")
    simpo = raw.get("simpo")
    if not isinstance(simpo, dict):
        raise TrainerError(f"{path}: no 'simpo' settings")

    def number(key: str) -> float:
        value = simpo.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TrainerError(f"{path}: simpo.{key} must be a number, got {value!r}")
        return float(value)

    def where(key: str, default: str) -> Path:
        # The contract writes absolute paths; a relative one is taken from the work directory.
        value = raw.get(key) or default
        return (work_dir / value).resolve() if not os.path.isabs(value) else Path(value)

    init = raw.get("init_adapter")
    settings = Settings(
        work_dir=work_dir,
        base_model=str(raw.get("base_model", "")),
        init_adapter=where("init_adapter", "") if init else None,
        pairs=where("pairs", "pairs.jsonl"),
        output_dir=where("output_dir", "adapter"),
        metrics=where("metrics", "metrics.json"),
        beta=number("beta"),
        gamma=number("gamma"),
        learning_rate=number("learning_rate"),
        epochs=number("epochs"),
        batch_size=int(number("batch_size")),
        sft_weight=float(simpo.get("sft_weight", 0) or 0),
        seed=int(number("seed")),
    )
    if settings.batch_size < 1 or settings.epochs < 0 or settings.learning_rate < 0:
        raise TrainerError(f"{path}: need simpo.batch_size >= 1, epochs >= 0 and learning_rate >= 0")
    if settings.init_adapter is not None and not (settings.init_adapter / "adapter_config.json").is_file():
        raise TrainerError(f"init_adapter {settings.init_adapter} has no adapter_config.json (not a peft adapter directory)")
    return settings


Messages = list[dict[str, Any]]


@dataclass
class Pair:
    """One line of pairs.jsonl: conversation turns and the image files they show."""

    line: int
    prompt: Messages
    chosen: Messages
    rejected: Messages
    images: list[Path]


def _turns(value: Any, role: str) -> Optional[Messages]:
    """A list of chat messages; a bare string becomes one text message of ``role``."""
    if isinstance(value, str):
        return [{"role": role, "content": [{"type": "text", "text": value}]}]
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return value
    return None


def _text(messages: Messages) -> str:
    parts = []
    for m in messages:
        content = m["content"]
        parts.extend([content] if isinstance(content, str) else [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"])
    return "".join(parts)


def _image_slots(messages: Messages) -> int:
    return sum(1 for m in messages if not isinstance(m["content"], str) for c in m["content"] if isinstance(c, dict) and c.get("type") == "image")


def read_pairs(path: Path, work_dir: Path) -> list[Pair]:
    """Parses pairs.jsonl. Malformed lines and missing image files are errors; pairs that cannot
    teach anything (an empty answer, images that do not match the prompt's image slots) are skipped
    with a warning."""
    if not path.is_file():
        raise TrainerError(f"pairs file {path} not found")
    pairs: list[Pair] = []
    missing: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TrainerError(f"{path}:{number}: not JSON ({error})") from None
        images = record.get("images") or []
        prompt = _turns(record.get("prompt"), "user")
        chosen = _turns(record.get("chosen"), "assistant")
        rejected = _turns(record.get("rejected"), "assistant")
        if prompt is None or chosen is None or rejected is None or not isinstance(images, list):
            raise TrainerError(f"{path}:{number}: expected TRL's conversational shape (prompt/chosen/rejected message lists, images a list of paths)")
        if isinstance(record.get("prompt"), str):
            # A plain-string prompt gets one image slot per image, in front, as TRL's records have.
            prompt[0]["content"] = [{"type": "image"} for _ in images] + prompt[0]["content"]
        files = [Path(p) if os.path.isabs(p) else work_dir / p for p in images]
        missing.extend(f"{path.name}:{number}: {f}" for f in files if not f.is_file())
        if not _text(chosen).strip() or not _text(rejected).strip():
            log(f"warning: {path.name}:{number}: empty chosen or rejected answer; pair skipped")
            continue
        if _image_slots(prompt) != len(files):
            log(f"warning: {path.name}:{number}: prompt has {_image_slots(prompt)} image slots but {len(files)} images; pair skipped")
            continue
        pairs.append(Pair(number, prompt, chosen, rejected, files))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise TrainerError(f"{len(missing)} image file(s) missing (image paths are relative to the work directory): {'; '.join(missing[:5])}{more}")
    return pairs


def write_metrics(path: Path, metrics: dict[str, float]) -> None:
    """metrics.json, written last and atomically: its presence tells the actor training finished."""
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise TrainerError(f"metric {key} is {value}; refusing to write metrics that JSON cannot carry")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def copy_adapter(source: Path, target: Path) -> None:
    """The unchanged previous adapter as this iteration's result (nothing to train on)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_dir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target / item.name)


# ---------------------------------------------------------------------------------------------
# Turning a pair into model inputs


@dataclass
class Encoded:
    """One conversation (prompt + one answer) as processor outputs (batch dimension 1) and the
    positions of its answer tokens."""

    tensors: dict[str, "torch.Tensor"]
    answer_mask: "torch.Tensor"  # [T] bool


def load_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


class Encoder:
    """Renders conversations with the processor's chat template and tokenizes them with the images.

    The answer tokens are those after the rendered prompt (with its generation prompt, e.g.
    "ASSISTANT:"): both renderings are tokenized the same way, image tokens expanded, and the
    answer starts where the two token sequences part. Everything the template adds after the
    answer (end-of-turn token) counts as answer too: the model must learn to stop. Templates that
    end the assistant turn without the EOS token (LLaVA-1.5's) get it appended, as TRL does, unless
    ``append_eos`` is off.
    """

    def __init__(self, processor: Any, max_length: int, image_loader: Callable[[Path], Any] = load_image, append_eos: bool = True) -> None:
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = max_length
        self.load_image = image_loader
        eos = getattr(self.tokenizer, "eos_token_id", None)
        self.eos_id = eos if append_eos and isinstance(eos, int) else None
        self.prefix_warned = False
        if not (getattr(processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)):
            raise TrainerError("the model's processor has no chat template (chat_template.jinja / chat_template.json); this trainer needs one to render the pairs")
        pad = getattr(self.tokenizer, "pad_token_id", None)
        self.pad_id = pad if pad is not None else (getattr(self.tokenizer, "eos_token_id", None) or 0)

    def render(self, messages: Messages, generation_prompt: bool) -> str:
        # The processor's template knows {"type": "image"} parts; a processor without one falls
        # back to the tokenizer's (older checkpoints kept it in tokenizer_config.json).
        owner = self.processor if getattr(self.processor, "chat_template", None) else self.tokenizer
        text = owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return text[0] if isinstance(text, list) else text

    def tokenize(self, text: str, images: list[Any]) -> dict[str, "torch.Tensor"]:
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and text.startswith(bos):
            # The template already wrote the BOS token; a second one would shift every position.
            kwargs["add_special_tokens"] = False
        # Only tensors travel to the model (some processors add lists or strings for their own use).
        return {k: v for k, v in self.processor(**kwargs).items() if hasattr(v, "shape")}

    @staticmethod
    def _append(tensors: dict[str, "torch.Tensor"], token: int) -> dict[str, "torch.Tensor"]:
        """One more token at the end of a single sequence (attended, of the text type)."""
        import torch

        out = dict(tensors)
        for k in PER_TOKEN_KEYS:
            if k in out:
                value = token if k == "input_ids" else (1 if k == "attention_mask" else 0)
                out[k] = torch.cat([out[k], torch.full((1, 1), value, dtype=out[k].dtype)], dim=1)
        return out

    def encode(self, pair: Pair) -> tuple[Optional[tuple[Encoded, Encoded]], str]:
        """(chosen, rejected) encodings, or None and why the pair cannot be used."""
        import torch

        images = [self.load_image(p) for p in pair.images]
        prompt_ids = self.tokenize(self.render(pair.prompt, True), images)["input_ids"][0]
        out: list[Encoded] = []
        for answer in (pair.chosen, pair.rejected):
            tensors = self.tokenize(self.render(pair.prompt + answer, False), images)
            ids = tensors["input_ids"][0]
            n = min(len(ids), len(prompt_ids))
            differ = (ids[:n] != prompt_ids[:n]).nonzero()
            start = int(differ[0]) if len(differ) else n
            if start < len(prompt_ids) and not self.prefix_warned:
                self.prefix_warned = True
                log(f"warning: pairs.jsonl:{pair.line}: the prompt's tokens are not a prefix of prompt+answer's (chat template or tokenizer merges across the boundary); answers are counted from the first differing token")
            if self.eos_id is not None and not bool((ids[start:] == self.eos_id).any()):
                tensors = self._append(tensors, self.eos_id)
                ids = tensors["input_ids"][0]
            if start >= self.max_length - 1:
                return None, f"prompt is {start} tokens, --max-length is {self.max_length}"
            if len(ids) > self.max_length:
                # Cut the answer's tail: the prompt (and its image tokens) stays whole.
                tensors = {k: (v[:, : self.max_length] if k in PER_TOKEN_KEYS else v) for k, v in tensors.items()}
            length = tensors["input_ids"].shape[1]
            mask = torch.zeros(length, dtype=torch.bool)
            mask[start:] = True
            if "attention_mask" in tensors:
                mask &= tensors["attention_mask"][0].bool()
            if not mask[1:].any():
                return None, "no answer tokens after the prompt"
            out.append(Encoded(tensors, mask))
        return (out[0], out[1]), ""


def collate(encoded: Sequence[Encoded], pad_id: int) -> list[tuple[dict[str, "torch.Tensor"], "torch.Tensor"]]:
    """Batches for the forward pass: one right-padded batch when the per-image tensors stack
    (LLaVA-1.5: fixed-size pixel values), else one batch per sequence (processors whose image
    tensors vary in shape, e.g. any-resolution tiling). Each is (inputs, answer mask [B, T])."""
    import torch

    keys = set(encoded[0].tensors)
    stackable = all(set(e.tensors) == keys for e in encoded) and all(
        all(e.tensors[k].shape[1:] == encoded[0].tensors[k].shape[1:] for e in encoded) for k in keys if k not in PER_TOKEN_KEYS
    )
    if not stackable:
        return [(e.tensors, e.answer_mask.unsqueeze(0)) for e in encoded]
    width = max(e.tensors["input_ids"].shape[1] for e in encoded)

    def pad(t: "torch.Tensor", value: int) -> "torch.Tensor":
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    batch: dict[str, torch.Tensor] = {}
    for k in keys:
        parts = [e.tensors[k] for e in encoded]
        if k in PER_TOKEN_KEYS:
            batch[k] = torch.cat([pad(p, pad_id if k == "input_ids" else 0) for p in parts])
        else:
            batch[k] = torch.cat(parts)
    mask = torch.cat([pad(e.answer_mask.unsqueeze(0).long(), 0) for e in encoded]).bool()
    return [(batch, mask)]


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class Options:
    micro_batch: int
    pairs_per_step: int
    max_length: int
    margin_pairs: int
    max_grad_norm: float
    lr_scheduler: str
    warmup_ratio: float


def answer_logprobs(model: Any, encoded: Sequence[Encoded], pad_id: int, device: "torch.device", dtype: "torch.dtype") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Summed answer log-probs and answer lengths of the sequences, in their order."""
    import torch

    from simpo import sequence_logprobs

    lps, counts = [], []
    for inputs, mask in collate(encoded, pad_id):
        inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        logits = model(**inputs, use_cache=False).logits
        lp, n = sequence_logprobs(logits, inputs["input_ids"], mask.to(device))
        lps.append(lp)
        counts.append(n)
    return torch.cat(lps), torch.cat(counts)


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Multiplier of the peak learning rate for optimizer step ``step`` (0-based): linear warm-up
    over ``warmup`` steps, then constant or cosine decay (SimPO's recipe: cosine, 10% warm-up).
    The last step keeps a non-zero rate so that no step is wasted."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if kind == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


class Progress:
    """tqdm on a terminal; a plain line per step otherwise (actor logs, files), with an ETA."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self.bar: Any = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def step(self, done: int, loss: float, margin: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", margin=f"{margin:+.3f}", lr=f"{lr:.1e}")
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * max(0, self.total - done)
        # The trainer contract's step line (actors/trainers/step-lines.ts): the actor reads
        # "step N/T ... loss X ... margin Y" into its heartbeats and the run's training curve.
        log(f"step {done}/{self.total} loss {loss:.4f} margin {margin:+.4f} lr {lr:.2e} elapsed {_clock(elapsed)} eta {_clock(eta)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def mean_margin(model: Any, encoder: Encoder, pairs: Sequence[Pair], opts: Options, settings: Settings, device: "torch.device", dtype: "torch.dtype") -> float:
    """Mean length-normalised margin lp_w/|y_w| - lp_l/|y_l| over the pairs (no dropout, no grad)."""
    import torch

    from simpo import simpo_loss

    margins: list[float] = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs), opts.micro_batch):
            encoded = [e for e, _ in (encoder.encode(p) for p in pairs[i : i + opts.micro_batch]) if e is not None]
            if not encoded:
                continue
            lp, n = answer_logprobs(model, [c for c, _ in encoded] + [r for _, r in encoded], encoder.pad_id, device, dtype)
            _, margin = simpo_loss(lp, n, len(encoded), settings.beta, settings.gamma)
            margins.extend(margin.float().tolist())
    model.train(was_training)
    return sum(margins) / len(margins) if margins else 0.0


def train(model: Any, encoder: Encoder, pairs: list[Pair], settings: Settings, opts: Options, device: "torch.device", dtype: "torch.dtype") -> dict[str, float]:
    """SimPO on the pairs: shuffled each epoch, ``pairs_per_step`` pairs per AdamW step in
    micro-batches of ``micro_batch`` pairs (chosen and rejected answers in one forward pass).
    Returns the contract's metrics except ``seconds``."""
    import torch

    from simpo import simpo_loss

    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(settings.seed)
    order_rng = random.Random(settings.seed)

    probe = pairs[: opts.margin_pairs]
    margin_before = mean_margin(model, encoder, probe, opts, settings, device, dtype)
    log(f"margin before: {margin_before:+.4f} (mean over {len(probe)} pairs)")

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainerError("the model has no trainable parameters (LoRA not applied?)")
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    epochs = math.ceil(settings.epochs)
    steps_per_epoch = math.ceil(len(pairs) / opts.pairs_per_step)
    total = epochs * steps_per_epoch
    warmup = int(opts.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, opts.lr_scheduler))

    skipped: set[int] = set()
    used: set[int] = set()
    losses: list[float] = []
    progress = Progress(total)
    model.train()
    try:
        for _ in range(epochs):
            order = [i for i in range(len(pairs)) if i not in skipped]
            order_rng.shuffle(order)
            for start in range(0, len(order), opts.pairs_per_step):
                chunk: list[tuple[Encoded, Encoded]] = []
                for i in order[start : start + opts.pairs_per_step]:
                    encoded, why = encoder.encode(pairs[i])
                    if encoded is None:
                        log(f"warning: pairs.jsonl:{pairs[i].line}: {why}; pair skipped")
                        skipped.add(i)
                    else:
                        chunk.append(encoded)
                        used.add(i)
                if not chunk:
                    continue
                step_loss, step_margin = 0.0, 0.0
                for m in range(0, len(chunk), opts.micro_batch):
                    micro = chunk[m : m + opts.micro_batch]
                    lp, n = answer_logprobs(model, [c for c, _ in micro] + [r for _, r in micro], encoder.pad_id, device, dtype)
                    loss, margin = simpo_loss(lp, n, len(micro), settings.beta, settings.gamma, settings.sft_weight)
                    # Weighted by the micro-batch's share, so the step's gradient is that of the
                    # mean loss over all its pairs, whatever the split.
                    (loss * (len(micro) / len(chunk))).backward()
                    step_loss += loss.item() * len(micro) / len(chunk)
                    step_margin += margin.sum().item() / len(chunk)
                if not math.isfinite(step_loss):
                    raise TrainerError(f"the loss became {step_loss} at step {len(losses) + 1}; lower the learning rate (now {settings.learning_rate})")
                if opts.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, opts.max_grad_norm)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(step_loss)
                progress.step(len(losses), step_loss, step_margin, lr)
    finally:
        progress.close()
    if skipped:
        log(f"{len(skipped)} pair(s) skipped (see warnings above)")

    margin_after = mean_margin(model, encoder, [p for i, p in enumerate(pairs) if i not in skipped][: opts.margin_pairs], opts, settings, device, dtype)
    log(f"margin after: {margin_after:+.4f}")
    return {
        "steps": len(losses),
        "pairs": len(used),
        "loss_first": losses[0] if losses else 0.0,
        "loss_last": losses[-1] if losses else 0.0,
        "margin_before": margin_before,
        "margin_after": margin_after,
    }


# ---------------------------------------------------------------------------------------------
# Model loading


def _version(module: Any) -> tuple[int, int]:
    numbers = re.findall(r"\d+", getattr(module, "__version__", "0.0"))
    return (int(numbers[0]), int(numbers[1])) if len(numbers) >= 2 else (0, 0)


def load_model(base: str, dtype: "torch.dtype", device: "torch.device") -> tuple[Any, Any]:
    """The processor and the image-text-to-text model, whatever transformers calls the class."""
    import transformers

    local = Path(base).exists()
    where = {"local_files_only": True} if local else {}
    try:
        processor = transformers.AutoProcessor.from_pretrained(base, **where)
    except OSError as error:
        raise TrainerError(f"cannot load the processor of {base!r}: {error}") from None
    # transformers >= 4.56 calls it `dtype`; before, `torch_dtype` (an unknown `dtype` would be
    # silently stored in the config and the weights loaded in float32).
    kwargs: dict[str, Any] = {"dtype" if _version(transformers) >= (4, 56) else "torch_dtype": dtype, **where}
    if device.type == "cuda":
        try:
            import accelerate  # noqa: F401  (device_map needs it)

            kwargs["device_map"] = {"": str(device)}
        except ImportError:
            pass
    tried: list[str] = []
    for name in ("AutoModelForImageTextToText", "LlavaForConditionalGeneration", "AutoModelForVision2Seq"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            model = cls.from_pretrained(base, **kwargs)
        except ValueError as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            if not re.search(r"unrecognized configuration|not supported|does not recognize", str(error), re.I):
                raise
            tried.append(f"{name}: {first}")  # this auto class does not know the config: next one
            continue
        except OSError as error:
            raise TrainerError(f"cannot load the weights of {base!r}: {error}") from None
        if "device_map" not in kwargs:
            model.to(device)
        log(f"loaded {type(model).__name__} from {base} ({dtype}, {device})")
        return processor, model
    raise TrainerError(f"no image-text-to-text model class in transformers {transformers.__version__} loads {base!r}: {'; '.join(tried)}")


def lora_targets(model: Any, names: Sequence[str], include_vision: bool) -> Any:
    """peft's target_modules: the named linear layers of the language model only (a regex that
    excludes the vision parts), or of the whole model with --lora-vision."""
    if include_vision:
        return list(names)
    vision = "|".join(re.escape(p) for p in VISION_PARTS)
    wanted = "|".join(re.escape(n) for n in names)
    pattern = rf"(?!(?:.*\.)?(?:{vision})(?:\.|$)).*\.(?:{wanted})"
    matched = [n for n, _ in model.named_modules() if re.fullmatch(pattern, n)]
    if not matched:
        raise TrainerError(f"no module named {', '.join(names)} outside the vision tower; pick --target-modules from the model's layers")
    return pattern


def apply_lora(model: Any, init_adapter: Optional[Path], args: argparse.Namespace) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if args.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input-embedding grads, which frozen bases lack.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        cfg = model.peft_config["default"]
        log(f"continuing adapter {init_adapter} (rank {cfg.r}, alpha {cfg.lora_alpha}; its own LoRA settings win over the command line's)")
    else:
        names = [t.strip() for t in args.target_modules.split(",") if t.strip()]
        config = LoraConfig(
            r=args.lora_rank,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=lora_targets(model, names, args.lora_vision),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
        log(f"fresh LoRA: rank {args.lora_rank}, alpha {args.lora_alpha}, dropout {args.lora_dropout}, on {','.join(names)}{' (vision too)' if args.lora_vision else ' (language model)'}")
    trainable, total = model.get_nb_trainable_parameters()
    log(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(1, total):.3f}%)")
    return model


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SimPO LoRA trainer for LLaVA-style models; implements actors/trainers/contract.ts.")
    p.add_argument("--base-model", required=True, help="Hugging Face id or local path of the base weights (local paths load with local_files_only)")
    p.add_argument("--work-dir", default=os.environ.get("POP_TRAIN_DIR"), help="the trainer work directory (default: $POP_TRAIN_DIR)")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--target-modules", default=DEFAULT_TARGETS, help=f"comma-separated linear layer names (default {DEFAULT_TARGETS})")
    p.add_argument("--lora-vision", action="store_true", help="also put LoRA on the vision tower and projector (default: language model only)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="load the base weights in bfloat16 (default: on with CUDA)")
    p.add_argument("--micro-batch", type=int, default=1, help="pairs per forward pass (its chosen and rejected answers together)")
    p.add_argument("--grad-accum", type=int, default=None, help="micro-batches per optimizer step (default: settings' simpo.batch_size / --micro-batch)")
    p.add_argument("--max-length", type=int, default=2048, help="tokens per sequence, image tokens included; longer answers are cut at the end")
    p.add_argument("--append-eos", action=argparse.BooleanOptionalAction, default=True, help="end answers with the EOS token when the chat template does not (default: on)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=False, help="trade compute for activation memory (long answers, big models)")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
    p.add_argument("--lr-scheduler", choices=("cosine", "constant"), default="cosine", help="after warm-up; peak = settings' simpo.learning_rate")
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--margin-pairs", type=int, default=64, help="pairs whose mean margin is measured before and after training")
    args = p.parse_args(argv)
    if not args.work_dir:
        p.error("no work directory: pass --work-dir or set POP_TRAIN_DIR")
    if args.micro_batch < 1 or (args.grad_accum is not None and args.grad_accum < 1) or args.max_length < 8:
        p.error("--micro-batch and --grad-accum must be >= 1, --max-length >= 8")
    return args


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    work_dir = Path(args.work_dir).resolve()
    settings = read_settings(work_dir)
    pairs = read_pairs(settings.pairs, work_dir)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    log(f"work dir {work_dir}: {len(pairs)} usable pairs, SimPO beta {settings.beta} gamma {settings.gamma} sft {settings.sft_weight} lr {settings.learning_rate} epochs {settings.epochs} batch {settings.batch_size}")

    if not pairs and settings.init_adapter is not None:
        # Nothing to learn from: the previous adapter is this iteration's, unchanged; no model load.
        copy_adapter(settings.init_adapter, settings.output_dir)
        log(f"no pairs: copied {settings.init_adapter} to {settings.output_dir} unchanged")
        write_metrics(settings.metrics, {"steps": 0, "pairs": 0, "loss_first": 0.0, "loss_last": 0.0, "margin_before": 0.0, "margin_after": 0.0, "seconds": time.monotonic() - started})
        return

    try:
        import torch
        import peft
        import transformers
    except ImportError as error:
        raise TrainerError(f"{error.name} is not importable by {sys.executable}; this trainer needs torch, transformers, peft and pillow") from None
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, python {sys.version.split()[0]}")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainerError(f"--device {args.device} but torch sees no CUDA device")
    bf16 = args.bf16 if args.bf16 is not None else (device.type == "cuda" and torch.cuda.is_bf16_supported())
    dtype = torch.bfloat16 if bf16 else torch.float32

    processor, model = load_model(args.base_model, dtype, device)
    model = apply_lora(model, settings.init_adapter, args)
    encoder = Encoder(processor, args.max_length, append_eos=args.append_eos)
    grad_accum = args.grad_accum or max(1, math.ceil(settings.batch_size / args.micro_batch))
    opts = Options(
        micro_batch=args.micro_batch,
        pairs_per_step=grad_accum * args.micro_batch,
        max_length=args.max_length,
        margin_pairs=args.margin_pairs,
        max_grad_norm=args.max_grad_norm,
        lr_scheduler=args.lr_scheduler,
        warmup_ratio=args.warmup_ratio,
    )
    log(f"{opts.pairs_per_step} pairs per step ({grad_accum} x {opts.micro_batch}), {math.ceil(settings.epochs)} epoch(s), max length {opts.max_length}")

    metrics: dict[str, float] = train(model, encoder, pairs, settings, opts, device, dtype) if pairs else {
        "steps": 0, "pairs": 0, "loss_first": 0.0, "loss_last": 0.0, "margin_before": 0.0, "margin_after": 0.0,
    }
    model.save_pretrained(str(settings.output_dir))
    log(f"adapter saved to {settings.output_dir}")
    metrics["seconds"] = time.monotonic() - started
    write_metrics(settings.metrics, metrics)
    log("metrics: " + json.dumps(metrics))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except TrainerError as error:
        print(f"simpo_lora: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
