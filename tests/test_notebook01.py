"""Introduction to Diffusers (notebooks/01_introduction_to_diffusers.ipynb) as a specification.

tests/test_book.py runs the whole notebook in quick mode; these tests run its own cells (``run_cells``) with
tiny stand-ins and compare what they do, and check that every number the prose states is the
number the code computes (``STATED`` below). Conventions: tests/notebook_helpers.py.
To add a number the prose states: add its phrase to ``STATED`` with the number as a ``{field}``,
and compute the field in ``facts`` (from code, never typed in).
"""
import ast
import math
import re
import warnings

import pytest
import torch
from notebook_helpers import assigned, missing_phrases, prose, read_notebook, says, sizes_on

import course_utils as cu
from course_utils.data_sources import STANDIN_BUTTERFLIES, ImageData
from course_utils.exercises import nb01
from tools import figures
from tools.notebook_code import code_cells, run_cells

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)
NOTEBOOK = "01_introduction_to_diffusers.ipynb"

#: Every number the prose states, as a phrase with ``{field}``s from ``facts``: a rewording changes one row.
STATED = [
    "samples with all {gpu_sample_steps} steps",
    "samples with {cpu_sample_steps} steps",
    "with {gpu_params:,} parameters",
    "{cpu_params:,} parameters, about a {ratio_word} as many",
    "`{cpu_channels}`",
    "{groups} normalisation groups instead of {default_groups} (`norm_num_groups={groups}`)",
    "so that each group holds as many channels as in the full model ({channels_per_group} in the first block, "
    "{channels_per_group_last} in the last)",
    "the channels grow (from {gpu_first_channels} to {gpu_last_channels} in the unit's model)",
    "makes {num_epochs} passes (epochs)",
    "learning rate of {lr}",
    "on a CPU with {cpu_sample_steps} (`num_inference_steps`)",
    "$t$ = {lead100_first}, {lead100_second}, ..., {lead100_last}",
    "mini-batches of {batch_size} images",
    "{standin} drawn stand-in butterflies",
    "betas rising linearly from {beta_start} to {beta_end}",
    "by $t = 500$, $\\sqrt{{\\bar\\alpha_t}}$ is already below {alpha_bar_500}",
    "warms up over the first {warmup} steps",
    "the whole notebook took about {nb01_minutes} minutes in one measured run",  # docs/figures.json
    "on an otherwise idle 2-core CPU, {nb01_training_minutes} of them in this cell",
    "{outside_pct_500}% of the values of $\\hat x_0$ lay outside [-1, 1] at $t = 500$, {outside_pct_950}% at $t = 950$ "
    "and {outside_pct_999}% at $t = 999$, the largest at {max_abs_999:,}",
    # the schedule exercise states what its check asks
    "($\\sqrt{{\\bar\\alpha_t}} \\ge {signal_500}$) up to $t = 500$",
    "($\\sqrt{{\\bar\\alpha_{{999}}}} \\le {signal_end}$)",
    # DDPM and DDIM: where the steps are (the trained cosine schedule)
    "with {few} steps, $t$ = {lead10_first}, {lead10_second}, ..., {lead10_last}",
    "at $t = {lead10_first}$, where the cosine schedule keeps $\\sqrt{{\\bar\\alpha_{{{lead10_first}}}}} = {signal_lead10:.2f}$",
    "starts at $t = {trail10_first}$ ({trail10_first}, {trail10_second}, ..., {trail10_last})",
    "its last step goes from $t = {trail10_last}$ straight to the clean image",
    "leading spacing starts at $t = {lead100_first}$, where $\\sqrt{{\\bar\\alpha_{{{lead100_first}}}}} = {signal_lead100:.3f}$",
    "Left DDPM, right DDIM; top to bottom: {rows}.",
    # the model view: dividing by a tiny sqrt(alpha_bar) (the trained schedule)
    "$\\sqrt{{\\bar\\alpha_{{{lead100_first}}}}} = {signal_lead100:.3f}$ and $\\sqrt{{\\bar\\alpha_{{999}}}} = {signal_999:.5f}$",
    "by about {gain_990} and by about {gain_999:,}",
    "An error of 0.001 in the predicted noise becomes an error of {error_999:.0f} in $\\hat x_0$ at $t = 999$",
    "($t = {lead100_first}$ with 100 steps, $t = 999$ with 1000)",
]


@pytest.fixture(scope="module")
def nb():
    return read_notebook(NOTEBOOK)


@pytest.fixture(scope="module")
def cells():
    return code_cells(NOTEBOOK)


def count(preset):
    return cu.count_parameters(cu.make_unet(preset))


def scientific(x: float) -> str:
    """4e-4 as the notebook writes it (not Python's 0.0004)."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@pytest.fixture(scope="module")
def facts(cells):
    """The value of every {field} of STATED, computed from the notebook's cells and the package."""
    from course_utils.train.args import build_parser

    mp = pytest.MonkeyPatch()
    try:
        sizes = {}
        for gpu in (True, False):
            sizes_on(mp, gpu=gpu, quick=False)
            sizes[gpu] = {name: assigned(cells[cid].source, name, cu=cu, USE_PRETRAINED=False) for cid, name in
                          [("training", "num_epochs"), ("pipeline", "sample_steps"), ("batches", "batch_size")]}
    finally:
        mp.undo()
    ns = run_cells(NOTEBOOK, ["imports", "scheduler"])
    linear = ns["noise_scheduler"]
    trained = run_cells(NOTEBOOK, ["train-scheduler"], namespace=dict(ns))["noise_scheduler"]
    ns = run_cells(NOTEBOOK, ["training"], namespace=dict(ns, model=torch.nn.Linear(1, 1), train_batches=[None]),
                   replace={"num_epochs": 0})  # builds the optimizer, trains nothing
    gpu, cpu = count("butterflies"), count("butterflies-cpu")
    cpu_unet, gpu_unet = cu.make_unet("butterflies-cpu"), cu.make_unet("butterflies")
    return dict(
        gpu_params=gpu, cpu_params=cpu, ratio_word={6: "sixth"}.get(round(gpu / cpu), f"1/{round(gpu / cpu)}"),
        cpu_channels=cu.unet_config("butterflies-cpu")["block_out_channels"],
        groups=cu.unet_config("butterflies-cpu")["norm_num_groups"],
        channels_per_group=_same_channels_per_group(cpu_unet.down_blocks[0].resnets[0].norm1,
                                                    gpu_unet.down_blocks[0].resnets[0].norm1),
        channels_per_group_last=_same_channels_per_group(cpu_unet.down_blocks[-1].resnets[-1].norm2,
                                                         gpu_unet.down_blocks[-1].resnets[-1].norm2),
        gpu_sample_steps=sizes[True]["sample_steps"], cpu_sample_steps=sizes[False]["sample_steps"],
        num_epochs=sizes[False]["num_epochs"], batch_size=sizes[False]["batch_size"],
        lr=scientific(ns["optimizer"].param_groups[0]["lr"]), standin=STANDIN_BUTTERFLIES,
        beta_start=linear.config.beta_start, beta_end=linear.config.beta_end,
        alpha_bar_500=math.ceil(float(linear.alphas_cumprod[500].sqrt()) * 10) / 10,
        warmup=build_parser().parse_args([]).lr_warmup_steps,
        default_groups=_default("norm_num_groups"),
        gpu_first_channels=cu.unet_config("butterflies")["block_out_channels"][0],
        gpu_last_channels=cu.unet_config("butterflies")["block_out_channels"][-1],
        signal_500=nb01.SIGNAL_AT_500, signal_end=nb01.SIGNAL_AT_END,
        nb01_minutes=figures.load("notebook01_cpu")["minutes"],
        nb01_training_minutes=figures.load("notebook01_cpu")["training_minutes"],
        **{k: v for k, v in figures.load("notebook01_views").items() if k != "run"},
        **_spacing_facts(trained, sizes[False]["sample_steps"]),
        rows=_comparison_rows(cells),
        **_blow_up(trained),
    )


def _default(argument):
    import inspect

    from diffusers import UNet2DModel

    return inspect.signature(UNet2DModel.__init__).parameters[argument].default


def _spacing_facts(trained, cpu_steps):
    """Where 10 (and the CPU's 100) sampling steps fall, leading and trailing, with the trained schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    out = {"few": 10}
    for key, steps, spacing in [("lead10", 10, "leading"), ("trail10", 10, "trailing"), ("lead100", cpu_steps, "leading")]:
        timesteps = []
        for cls in (DDPMScheduler, DDIMScheduler):  # "both schedulers"
            sampler = cls.from_config(trained.config, timestep_spacing=spacing)
            sampler.set_timesteps(steps)
            timesteps.append(sampler.timesteps.tolist())
        assert timesteps[0] == timesteps[1]
        out.update({f"{key}_first": timesteps[0][0], f"{key}_second": timesteps[0][1], f"{key}_last": timesteps[0][-1]})
    signal = trained.alphas_cumprod.sqrt()
    out.update(signal_lead10=float(signal[out["lead10_first"]]), signal_lead100=float(signal[out["lead100_first"]]))
    return out


def _blow_up(trained):
    """How much dividing by sqrt(alpha_bar) magnifies an error of the predicted noise, at t = 990 and 999."""
    signal = trained.alphas_cumprod.double().sqrt()
    noise = (1 - trained.alphas_cumprod.double()).sqrt()
    one_digit = lambda x: int(float(f"{x:.0e}"))  # noqa: E731  (70, 20000: "about")
    return dict(signal_999=float(signal[999]), gain_990=one_digit(float(noise[990] / signal[990])),
                gain_999=one_digit(float(noise[999] / signal[999])), error_999=0.001 * float(noise[999] / signal[999]))


def _comparison_rows(cells):
    """The samplers cell's full-size rows, as the prose names them."""
    tree = ast.parse(cells["samplers"].source)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "cu.pick")
    full = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "full"))
    names = [f"{steps} steps" + (" with trailing spacing" if spacing == "trailing" else "") for steps, spacing in full]
    return ", ".join(names)


def _same_channels_per_group(cpu_norm, gpu_norm):
    per_group = cpu_norm.num_channels // cpu_norm.num_groups
    assert per_group == gpu_norm.num_channels // gpu_norm.num_groups, "the text says: as in the full model"
    return per_group


def test_the_prose_states_the_numbers_the_code_computes(nb, facts):
    assert not missing_phrases(prose(nb), STATED, facts), "reword the row of STATED, or correct the prose"


def test_sizes_do_not_depend_on_the_device_where_the_text_says_so(cells, monkeypatch):
    """30 epochs of batches of 64 with or without a GPU; in quick mode, a few of everything."""
    sizes = {}
    for gpu in (True, False):
        for quick in (True, False):
            sizes_on(monkeypatch, gpu=gpu, quick=quick)
            sizes[gpu, quick] = [assigned(cells[cid].source, name, cu=cu, USE_PRETRAINED=False) for cid, name in
                                 [("training", "num_epochs"), ("batches", "batch_size"), ("pipeline", "sample_steps"),
                                  ("peek", "peek_steps")]]
    assert sizes[True, False][:2] == sizes[False, False][:2]
    assert sizes[True, False][2:] == [1000, 1000] and sizes[False, False][2:] == [100, 100]
    assert all(q <= f for q, f in zip(sizes[False, True], sizes[False, False]))


def test_the_cpu_model_is_the_gpu_model_with_half_the_channels():
    gpu, cpu = cu.unet_config("butterflies"), cu.unet_config("butterflies-cpu")
    assert all(c * 2 == g for c, g in zip(cpu["block_out_channels"], gpu["block_out_channels"]))
    assert cpu["down_block_types"] == gpu["down_block_types"] and cpu["layers_per_block"] == 1


def test_the_unit_model_shown_in_markdown_is_the_preset(nb):
    """The model-md cell shows the unit's UNet2DModel call: its arguments are the preset's."""
    text = next(c.source for c in nb.cells if c.id == "model-md")
    block = re.search(r"```python\n(UNet2DModel\(.*?\n\))\n```", text, re.S).group(1)
    assert eval(block, {"UNet2DModel": dict}) == cu.unet_config("butterflies")


# --------------------------------------------------------------------------- the training script the notebook teaches
def _commands(markdown_text):
    """The argv (after the module name) of every course_utils.train command of the bash block."""
    block = re.search(r"```bash\n(.*?)```", markdown_text, re.S).group(1).replace("\\\n", " ")
    return [line.split("course_utils.train", 1)[1].split() for line in block.splitlines() if "course_utils.train" in line]


def test_every_command_the_notebook_shows_parses(nb, monkeypatch):
    """The commands of "Scaling up" run with a GPU; those without fp16 on a CPU too, and one of them does."""
    from course_utils.train.args import parse_args

    commands = _commands(next(c.source for c in nb.cells if c.id == "scale-md"))
    assert commands
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for argv in commands:  # valid with a GPU (the upload's token check aside)
        parse_args([a for a in argv if a != "--push_to_hub"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = [argv for argv in commands if "fp16" not in argv]
    assert on_cpu and all(parse_args(argv).mixed_precision in ("no", "bf16") for argv in on_cpu)


def test_the_scale_cell_runs_the_script_with_the_notebook_s_settings(cells, monkeypatch):
    """The scale cell's command (its CPU branch) is the notebook's recipe, and so are the script's defaults."""
    from course_utils.train.args import build_parser, parse_args

    sizes_on(monkeypatch, gpu=False, quick=False)
    epochs = assigned(cells["training"].source, "num_epochs", cu=cu, USE_PRETRAINED=False)
    ns = run_cells(NOTEBOOK, ["setup", "imports", "train-scheduler"])
    ns = run_cells(NOTEBOOK, ["batches", "training", "scale"], namespace=dict(ns, model=torch.nn.Linear(1, 1)),
                   replace={"num_epochs": 0, "train_batches": [None], "xb": torch.zeros(8, 3, 32, 32)})
    recipe = (ns["batch_size"], epochs, ns["optimizer"].param_groups[0]["lr"])
    args = parse_args(ns["train_command"][3:])
    assert (args.train_batch_size, args.num_epochs, args.learning_rate) == recipe and args.random_flip
    parser = build_parser()
    defaults = parser.parse_args([])
    assert (defaults.train_batch_size, defaults.num_epochs, defaults.learning_rate) == recipe
    schedule = next(a for a in parser._actions if "--ddpm_beta_schedule" in a.option_strings)
    assert schedule.default == ns["noise_scheduler"].config.beta_schedule  # the schedule the notebook trains with


# --------------------------------------------------------------------------- behaviour of the cells
def test_the_data_pipeline_cell_preprocesses_like_the_helper(cells):
    """The cell's own preprocess (resize, scale to [-1, 1]) gives the helper's tensors."""
    from course_utils import image_prep
    from course_utils.butterfly_art import draw_butterfly

    ns = run_cells(NOTEBOOK, ["imports", "data-pipeline"])
    img = image_prep.open_image(draw_butterfly(1, 96))
    helper = image_prep.to_range(torch.from_numpy(image_prep.image_to_array(img, 32).copy()))
    assert torch.allclose(ns["preprocess"](img), helper, atol=1e-5)
    assert torch.equal(ns["flipped"][..., 0], ns["small"][..., -1])


def test_clipping_differs_between_the_scheduler_s_x0_and_the_widget_s():
    """The scheduler the notebook samples with clips pred_original_sample to [-1, 1]; the widget's x0 is as computed."""
    from diffusers import DDPMScheduler

    from course_utils.widget_frames import split_prediction

    ns = run_cells(NOTEBOOK, ["imports", "scheduler"])
    scheduler = DDPMScheduler.from_config(ns["noise_scheduler"].config)
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[0]
    far = torch.full((1, 3, 4, 4), -50.0)
    out = scheduler.step(far, t, torch.zeros(1, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    assert out.pred_original_sample.abs().max() == 1.0
    _, x0 = split_prediction(far, torch.zeros(1, 3, 4, 4), scheduler.alphas_cumprod[t], "epsilon")
    assert x0.abs().max() > 1


def tiny_unet():
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"))


def test_saved_pipeline_is_safetensors_and_reloads_the_same_weights(tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler

    torch.manual_seed(0)
    pipeline = DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler(num_train_timesteps=1000))
    pipeline.save_pretrained(tmp_path / "my-pipeline")
    files = {p.relative_to(tmp_path / "my-pipeline").as_posix() for p in (tmp_path / "my-pipeline").rglob("*")}
    assert {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
            "scheduler/scheduler_config.json"} <= files
    assert not any(f.endswith(".bin") for f in files)
    assert all(f.endswith(".json") for f in files if f.startswith("scheduler/"))  # "holds just its JSON configuration"
    reloaded = DDPMPipeline.from_pretrained(tmp_path / "my-pipeline")
    before, after = pipeline.unet.state_dict(), reloaded.unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert reloaded.scheduler.config.num_train_timesteps == 1000


def test_key_cells_run_without_diffusers_deprecations(tmp_path, monkeypatch):
    """The notebook's cells from the data to sharing, on a tiny UNet and 16 px images in quick mode,
    with every FutureWarning (diffusers' deprecations) an error."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("COURSE_QUICK", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"(diffusers|huggingface_hub)")
        ns = run_cells(NOTEBOOK, ["setup", "imports", "login", "peek", "dreambooth", "data-pipeline", "scheduler",
                                  "schedules", "schedule-exercise"], cwd=tmp_path)
        images = torch.rand(8, 3, 16, 16) * 2 - 1
        ns.update(image_size=16, data=ImageData(images, "test images"), xb=images, batch_size=4,
                  train_batches=cu.BatchIterator(images, 4, seed=0))
        run_cells(NOTEBOOK, ["datasets-pipeline", "explorer", "add-noise", "add-noise-exercise", "forward-widget"],
                  namespace=ns, cwd=tmp_path)
        torch.manual_seed(0)
        ns["model"] = tiny_unet()
        run_cells(NOTEBOOK, ["shape", "unet-diagram", "train-scheduler", "shortcut", "training", "loss", "model-view",
                             "pipeline", "save", "reload", "loop", "trajectory", "samplers", "share"], namespace=ns,
                  cwd=tmp_path)
    assert len(ns["losses"]) == ns["num_epochs"] * len(ns["train_batches"]) and all(loss > 0 for loss in ns["losses"])
    assert len(ns["pipeline_output"].images) == 8
    assert (tmp_path / "my-pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    card = (tmp_path / "my-pipeline" / "README.md").read_text()
    assert says(card, 'DDPMPipeline.from_pretrained("your-username/')  # the model card shows how to load it
    assert len(ns["xs"]) == len(ns["pred_x0s"]) == len(ns["scheduler"].timesteps) == ns["sample_steps"]
    assert ns["x"].shape == (8, 3, 16, 16) and torch.isfinite(ns["x"]).all()
    assert list(ns["comparison"]) == [  # quick sizes: DDPM | DDIM, from one starting noise
        "DDPM, 2 steps, leading: t = 500, ..., 0", "DDIM, 2 steps, leading: t = 500, ..., 0",
        "DDPM, 2 steps, trailing: t = 999, ..., 499", "DDIM, 2 steps, trailing: t = 999, ..., 499",
        "DDPM, 3 steps, leading: t = 666, ..., 0", "DDIM, 3 steps, leading: t = 666, ..., 0"]
    assert ns["loader_xb"].shape == (4, 3, 32, 32) and ns["tensor_xb"].shape == (4, 3, 16, 16)  # both pipelines ran
    assert ns["same"] is True


def test_no_token_is_stored_in_the_notebook(cells):
    assert not [cid for cid, cell in cells.items() if re.search(r"hf_[A-Za-z0-9]{20,}", cell.source)]
