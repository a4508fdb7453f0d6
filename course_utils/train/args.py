"""The command line of the course's training script (``python -m course_utils.train --help``).

Used by "Introduction to Diffusers" (section "Scaling up") through ``course_utils.train``. Every
option is checked here, before any model or data is touched, so a typo fails in a second with a
usage message and exit code 2 instead of a traceback minutes into a GPU job.

Option names follow diffusers' ``examples/unconditional_image_generation/train_unconditional.py``
where they mean the same thing (``--ddpm_num_steps``, ``--ddpm_beta_schedule``,
``--model_config_name_or_path``, ...), so a command moves between the two.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from ..image_prep import MAX_SIZE
from ..models import UNET_PRESETS, butterflies_preset_for, unet_config
from ..settings import env_flag, get_device, is_quick
from . import checkpoints

#: What ``COURSE_QUICK=1`` caps the run to: a few steps on a few images, sampled in a few steps.
QUICK_CAPS = dict(max_train_steps=4, max_train_samples=64, ddpm_num_inference_steps=4, eval_batch_size=4)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, not {text}")
    return value


def _resolution(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SIZE} pixels, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2 ** 32:  # what NumPy (seeded by Accelerate's set_seed) accepts
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {2 ** 32 - 1}, not {text}")
    return value


def _folder_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, e.g. --output_dir ddpm-butterflies")
    return text


#: Options a resumed run must share with its checkpoint: they change what is learned or how. (The
#: data layout is checked separately, in ``loop``; a longer --max_train_steps or --num_epochs may resume.)
RECIPE = {"prediction_type": "--prediction_type", "beta_schedule": "--ddpm_beta_schedule",
          "num_train_timesteps": "--ddpm_num_steps", "learning_rate": "--learning_rate",
          "lr_scheduler": "--lr_scheduler", "lr_warmup_steps": "--lr_warmup_steps", "use_ema": "--use_ema",
          "ema_max_decay": "--ema_max_decay", "ema_power": "--ema_power", "max_grad_norm": "--max_grad_norm",
          "unet_config": "--model_preset/--model_config_name_or_path", "random_flip": "--random_flip",
          "center_crop": "--center_crop", "dataset_name": "--dataset_name", "train_data_dir": "--train_data_dir"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``--help`` explains every option."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.train",
        description="Train an unconditional DDPM (a diffusers UNet2DModel) on butterflies or your own images. "
                    "Runs on a CPU, one GPU, or many GPUs and machines with "
                    "`accelerate launch -m course_utils.train ...`. With no options it trains the CPU-sized "
                    "butterflies model on the Hub's Smithsonian butterflies (offline: a drawn stand-in).",
        epilog="COURSE_QUICK=1 in the environment caps the run to a few steps on a few images, for CI. "
               "Everything lands in --output_dir: the pipeline (model_index.json, unet/, scheduler/), "
               "samples/*.png, logs/loss.csv (and TensorBoard events when tensorboard is installed) and "
               "checkpoint-<step>/ folders.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # an abbreviation would keep old or mistyped option names working
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default=None,
                      help="A Hub data set with an image column, e.g. huggan/smithsonian_butterflies_subset. "
                           "Default (neither this nor --train_data_dir): the Smithsonian butterflies, or the "
                           "offline stand-in when the Hub cannot be reached.")
    data.add_argument("--train_data_dir", default=None,
                      help="A folder of your own images (searched recursively; unreadable files are skipped).")
    data.add_argument("--resolution", type=_resolution, default=32,
                      help="Images are resized to this many pixels square; a multiple of the UNet's "
                           "downsampling factor 2**(len(block_out_channels)-1).")
    data.add_argument("--center_crop", action="store_true",
                      help="Keep proportions: shorter side to --resolution, then a centre crop "
                           "(default: squash to a square, as the notebook does).")
    data.add_argument("--random_flip", action="store_true", help="Flip images left-right at random.")
    data.add_argument("--max_train_samples", type=_positive_int, default=None,
                      help="Use only the first N images (a quick try on a big data set).")

    model = parser.add_argument_group("model and noise schedule")
    model.add_argument("--model_preset", choices=sorted(UNET_PRESETS), default=None,
                       help="A UNet2DModel preset of course_utils (sample_size is set to --resolution). "
                            "Default: 'butterflies' on a GPU, 'butterflies-cpu' otherwise.")
    model.add_argument("--model_config_name_or_path", dest="model_config", default=None,
                       help="UNet2DModel arguments instead of a preset: a JSON file (e.g. a saved unet/config.json) "
                            "or a folder holding config.json (a saved unet/ folder, or a pipeline folder with unet/).")
    model.add_argument("--ddpm_num_steps", dest="num_train_timesteps", type=_positive_int,
                       default=1000, help="Steps of the noise schedule (DDPMScheduler's num_train_timesteps).")
    model.add_argument("--ddpm_beta_schedule", dest="beta_schedule",
                       default="squaredcos_cap_v2", choices=["linear", "scaled_linear", "squaredcos_cap_v2"],
                       help="DDPMScheduler's beta schedule (the notebook trains with squaredcos_cap_v2; diffusers' "
                            "script defaults to linear).")
    model.add_argument("--prediction_type", default="epsilon", choices=["epsilon", "sample"],
                       help="What the model learns to predict: the noise (epsilon) or the clean image (sample).")

    train = parser.add_argument_group("training")
    train.add_argument("--train_batch_size", type=_positive_int, default=64,
                       help="Images per batch on each process (the effective batch is this x processes x "
                            "--gradient_accumulation_steps).")
    train.add_argument("--num_epochs", type=_positive_int, default=30, help="Passes over the data.")
    train.add_argument("--max_train_steps", type=_positive_int, default=None,
                       help="Stop after this many optimizer steps (overrides --num_epochs).")
    train.add_argument("--learning_rate", type=_positive_float, default=4e-4, help="Peak learning rate of AdamW.")
    train.add_argument("--lr_scheduler", default="cosine",
                       choices=["cosine", "linear", "constant", "constant_with_warmup"],
                       help="Learning-rate schedule after the warm-up (diffusers.optimization.get_scheduler).")
    train.add_argument("--lr_warmup_steps", type=_non_negative_int, default=50,
                       help="Optimizer steps of linear warm-up from 0 to --learning_rate.")
    train.add_argument("--gradient_accumulation_steps", type=_positive_int, default=1,
                       help="Batches whose gradients are summed before each optimizer step.")
    train.add_argument("--max_grad_norm", type=float, default=1.0,
                       help="Clip the gradient norm to this (0 turns clipping off).")
    train.add_argument("--mixed_precision", default="no", choices=["no", "fp16", "bf16"],
                       help="Compute in 16-bit floats: bf16 on recent GPUs (and CPUs), fp16 on older GPUs.")
    train.add_argument("--use_ema", action="store_true",
                       help="Keep an exponential moving average of the weights (diffusers' EMAModel); samples "
                            "and the saved pipeline use it.")
    train.add_argument("--ema_max_decay", type=_positive_float, default=0.9999, help="Largest EMA decay.")
    train.add_argument("--ema_power", type=_positive_float, default=0.75, help="EMA warm-up power.")
    train.add_argument("--seed", type=_seed, default=0,
                       help="Seed of the model's initial weights, the data order, the noise and the samples: the "
                            "same seed and options give the same weights.")
    train.add_argument("--report_to", default="auto", choices=["auto", "tensorboard", "none"],
                       help="Also log to TensorBoard (auto: when tensorboard is installed). logs/loss.csv is "
                            "always written.")

    output = parser.add_argument_group("output and checkpoints")
    output.add_argument("--output_dir", type=_folder_name, default="ddpm-butterflies",
                        help="Where the pipeline, samples, logs and checkpoints go: one run per folder (a folder "
                             "holding another run's checkpoints takes only --resume_from_checkpoint).")
    output.add_argument("--save_images_epochs", type=_positive_int, default=10,
                        help="Save a grid of samples every N epochs (and at the end) to samples/.")
    output.add_argument("--save_model_epochs", type=_positive_int, default=10,
                        help="Save the pipeline every N epochs (and at the end).")
    output.add_argument("--eval_batch_size", type=_positive_int, default=16, help="Images per sample grid.")
    output.add_argument("--ddpm_num_inference_steps", type=_positive_int, default=1000,
                        help="Denoising steps when sampling the grids (fewer is faster and rougher).")
    output.add_argument("--checkpointing_steps", type=_positive_int, default=500,
                        help="Save a resumable checkpoint-<step>/ every N optimizer steps.")
    output.add_argument("--checkpoints_total_limit", type=_positive_int, default=None,
                        help="Keep only the newest N checkpoints.")
    output.add_argument("--resume_from_checkpoint", default=None,
                        help="A checkpoint folder (a path, or a name inside --output_dir) to continue from, or "
                             "'latest' for the newest intact one in --output_dir ('latest' with none there "
                             "starts afresh; damaged ones are passed over). Resume with the options the checkpoint "
                             "was made with (a longer --max_train_steps or --num_epochs is fine).")

    hub = parser.add_argument_group("sharing on the Hugging Face Hub")
    hub.add_argument("--push_to_hub", action="store_true",
                     help="Upload the pipeline at the end. Needs a token: HF_TOKEN or `hf auth login`.")
    hub.add_argument("--hub_model_id", default=None,
                     help="The repository, e.g. your-name/ddpm-butterflies (default: the --output_dir name).")
    hub.add_argument("--hub_private_repo", action="store_true", help="Create the repository as private.")
    return parser


def unet_downsampling_factor(config: dict) -> int:
    """How many times the UNet halves the image: 2**(number of blocks - 1)."""
    return 2 ** (len(config["block_out_channels"]) - 1)


def _config_file(parser, spec: str) -> Path:
    """The JSON file ``--model_config_name_or_path`` names: the file itself, or config.json in a folder."""
    path = Path(spec).expanduser()
    for candidate in (path, path / "config.json", path / "unet" / "config.json"):
        if candidate.is_file():
            return candidate
    parser.error(f"--model_config_name_or_path {spec}: no such file, and no folder with a config.json. Pass a JSON "
                 "file of UNet2DModel arguments or a saved unet/ folder (a Hub model: download it first, e.g. "
                 "`hf download NAME --local-dir DIR`).")


def _default_preset() -> str:
    """The butterflies preset for the device this run trains on (``ACCELERATE_USE_CPU=1`` means the CPU)."""
    return butterflies_preset_for("cpu" if env_flag("ACCELERATE_USE_CPU") else get_device())


def _check_unet(parser, config: dict, name: str) -> None:
    """Build the UNet on the meta device (no memory, no time): a bad block type, group count or
    channel list fails here, in a second, instead of after the data has loaded."""
    import torch
    from diffusers import UNet2DModel

    if config.get("in_channels", 3) != 3 or config.get("out_channels", 3) != 3:
        parser.error(f"{name} makes models of {config.get('in_channels')} channel(s) in and "
                     f"{config.get('out_channels')} out, but the training images are RGB: use 3 (e.g. --model_preset "
                     "butterflies or butterflies-cpu).")
    try:
        with torch.device("meta"):
            UNet2DModel.from_config(config)
    except Exception as error:  # diffusers raises ValueError, TypeError, KeyError... for bad arguments
        parser.error(f"{name} is not a valid UNet2DModel configuration ({type(error).__name__}: "
                     f"{str(error).splitlines()[0][:300] if str(error) else 'no details'}).")


def _model_config(parser, args) -> dict:
    if args.model_config is not None:
        path = _config_file(parser, args.model_config)
        name = f"--model_config_name_or_path {args.model_config}"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"{name}: {path} is not readable JSON ({error}).")
        if not isinstance(config, dict) or not config.get("block_out_channels"):
            parser.error(f"{name}: {path} must be a JSON object with block_out_channels (UNet2DModel's arguments).")
        config["sample_size"] = args.resolution
        _check_unet(parser, config, name)
        return config
    if args.model_preset is None:
        args.model_preset = _default_preset()
    config = unet_config(args.model_preset, sample_size=args.resolution)
    _check_unet(parser, config, f"--model_preset {args.model_preset}")
    return config


def _check_output_dir(parser, args) -> None:
    """``--output_dir`` must be a folder this process can create and write in: found out now, not after training.

    Probed with a temporary folder that is removed at once, so nothing is left behind when the
    run later stops at another usage error.
    """
    target = Path(args.output_dir).expanduser().absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    else:
        try:
            tempfile.TemporaryDirectory(prefix=".course-write-test-", dir=existing).cleanup()
        except OSError as error:
            problem = f"{existing} is not writable ({error.strerror or error})"
    if problem:
        parser.error(f"--output_dir {args.output_dir}: cannot {'write in' if existing == target else 'create'} it: "
                     f"{problem}. Choose a folder you can write to, e.g. --output_dir ~/ddpm-butterflies.")


def _check_data(parser, args) -> None:
    if args.dataset_name and args.train_data_dir:
        parser.error("Pass --dataset_name or --train_data_dir, not both.")
    if args.train_data_dir is not None:
        from ..image_prep import IMAGE_EXTENSIONS, list_image_files

        folder = Path(args.train_data_dir).expanduser()
        if not folder.is_dir():
            parser.error(f"--train_data_dir {args.train_data_dir}: no such folder.")
        if not list_image_files(folder):
            parser.error(f"--train_data_dir {args.train_data_dir} holds no images: put .jpg or .png files there "
                         f"(sub-folders are searched too; extensions {', '.join(sorted(IMAGE_EXTENSIONS))}).")


def _check_hub(parser, args) -> None:
    if not args.push_to_hub:
        return
    from huggingface_hub import get_token

    if not get_token():
        parser.error("--push_to_hub needs a Hugging Face token with write access: set HF_TOKEN or run "
                     "`hf auth login` (tokens: https://huggingface.co/settings/tokens), or leave out --push_to_hub.")
    if env_flag("HF_HUB_OFFLINE"):
        parser.error("--push_to_hub cannot upload while HF_HUB_OFFLINE=1 is set: unset it or leave out --push_to_hub.")
    if args.hub_model_id is None:
        args.hub_model_id = Path(args.output_dir).resolve().name


def _check_precision(parser, args) -> None:
    if args.mixed_precision == "fp16":
        import torch

        if not torch.cuda.is_available() or env_flag("ACCELERATE_USE_CPU"):
            parser.error("--mixed_precision fp16 needs a CUDA GPU: use bf16 (CPUs and recent GPUs) or no.")


def apply_quick_caps(args) -> list[str]:
    """Cap sizes in quick mode (``COURSE_QUICK=1``); returns what was capped, for one line of output."""
    if not is_quick():
        return []
    capped = []
    for name, cap in QUICK_CAPS.items():
        value = getattr(args, name)
        if value is None or value > cap:
            setattr(args, name, cap)
            capped.append(f"{name}={cap}")
    return capped


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; exits with a usage message (code 2) on any bad option.

    Adds ``unet_config`` (the UNet2DModel arguments), ``resume_path`` (a checkpoint folder or
    None) and ``quick_caps`` to the namespace.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_data(parser, args)
    if args.model_preset and args.model_config:
        parser.error("Pass --model_preset or --model_config_name_or_path, not both.")
    args.unet_config = _model_config(parser, args)
    factor = unet_downsampling_factor(args.unet_config)
    if args.resolution % factor:
        blocks = len(args.unet_config["block_out_channels"])
        parser.error(f"--resolution {args.resolution} is not a multiple of {factor}, the UNet's downsampling "
                     f"factor (2**({blocks}-1) for {blocks} blocks): use e.g. "
                     f"{max(factor, round(args.resolution / factor) * factor)}.")
    _check_precision(parser, args)
    _check_resume(parser, args)
    _check_hub(parser, args)
    _check_output_dir(parser, args)
    args.quick_caps = apply_quick_caps(args)
    if args.ddpm_num_inference_steps > args.num_train_timesteps:
        parser.error(f"--ddpm_num_inference_steps {args.ddpm_num_inference_steps} is more than --ddpm_num_steps "
                     f"{args.num_train_timesteps}: the sampler cannot take more steps than the noise schedule has. "
                     f"Use --ddpm_num_inference_steps {args.num_train_timesteps} or fewer.")
    return args


def _check_resume(parser, args) -> None:
    """The checkpoint to resume from (intact, made with the same recipe), and one run per folder:
    a fresh run never starts in a folder holding another run's checkpoints, which ``latest`` would
    later mix with its own and ``--checkpoints_total_limit`` would delete."""
    try:
        args.resume_path, args.resume_notes = checkpoints.resolve(args.resume_from_checkpoint, args.output_dir)
    except FileNotFoundError as error:
        parser.error(str(error))
    found = checkpoints.complete_checkpoints(args.output_dir)
    inside = args.resume_path is not None and args.resume_path.resolve().parent == Path(args.output_dir).resolve()
    if found and not inside:
        names = ", ".join(p.name for _, p in found)
        parser.error(f"--output_dir {args.output_dir} already holds checkpoints of a run ({names}): continue that "
                     "run with --resume_from_checkpoint latest, or start a new --output_dir.")
    if args.resume_path is None:
        return
    made_with = checkpoints.read_state(args.resume_path).get("args", {})
    now = {**vars(args), "unet_config": json.loads(json.dumps(args.unet_config, default=str))}
    changed = [f"{option} {made_with.get(dest)!r} there, {now[dest]!r} now" for dest, option in RECIPE.items()
               if dest in made_with and made_with[dest] != now[dest]]
    if changed:
        parser.error(f"--resume_from_checkpoint: {args.resume_path} was made with other options ({'; '.join(changed)}): "
                     "resume with the same options, or start a new --output_dir.")
