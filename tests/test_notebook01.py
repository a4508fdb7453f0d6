"""Introduction to Diffusers (notebooks/01_introduction_to_diffusers.ipynb), checked without running it.

nbmake runs the whole notebook; these tests are fast and check what a run cannot: how it is
stored, that its code follows today's diffusers conventions, that the numbers its text states are
the numbers its code uses, and (with tiny sizes, FutureWarnings as errors) that the notebook's own
key cells run.
"""
import ast
import re
import warnings
from pathlib import Path

import pytest
import torch
from notebook_helpers import cells_by_id, prose, read_notebook, says

import course_utils as cu
from course_utils.data_sources import STANDIN_BUTTERFLIES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_introduction_to_diffusers.ipynb"


@pytest.fixture(scope="module")
def nb():
    return read_notebook(NOTEBOOK.name)


@pytest.fixture(scope="module")
def cells(nb):
    """Cells by id (the generator gives every cell a stable id)."""
    return cells_by_id(nb)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def count(preset):
    return cu.count_parameters(cu.make_unet(preset))


# --------------------------------------------------------------------------- conventions
def test_no_scaled_backward_and_no_deprecated_config_access(nb):
    from diffusers import DDPMScheduler, UNet2DModel

    config_keys = set(DDPMScheduler().config) | set(UNet2DModel(**cu.unet_config("butterflies")).config)
    config_keys = {k for k in config_keys if not k.startswith("_")}
    # `obj.num_train_timesteps` and friends, but not `obj.config.num_train_timesteps`
    attribute = re.compile(r"(?<!\bconfig)\.(" + "|".join(sorted(config_keys)) + r")\b")
    for cell in code_cells(nb):
        code = cell.source
        assert not re.search(r"\.backward\(\s*\w", code), f"cell {cell.id}: use loss.backward(), not loss.backward(loss)"
        found = attribute.findall(code)
        assert not found, f"cell {cell.id}: read {found} from .config (direct access is deprecated)"
        assert "sys.path" not in code
        assert not re.search(r"^\s*(from tqdm import|import tqdm\b)|tqdm\.notebook", code, re.M), "use tqdm.auto"
        assert not re.search(r"hf_[A-Za-z0-9]{20,}", code), "a token must never be stored in the notebook"
        assert "Repository(" not in code and "HfFolder" not in code


def test_all_code_parses_and_training_loop_is_visible(cells):
    for cell in cells.values():
        if cell.cell_type == "code":
            ast.parse(cell.source)
    loop = cells["training"].source
    for piece in ("torch.randn_like(clean_images)", "torch.randint(0, noise_scheduler.config.num_train_timesteps",
                  "noise_scheduler.add_noise(", "F.mse_loss(noise_pred, noise)", "loss.backward()",
                  "optimizer.step()", "optimizer.zero_grad()", "tqdm("):
        assert piece in loop
    sampling = cells["loop"].source
    for piece in ("scheduler.timesteps", "scheduler.step(", "pred_original_sample", "prev_sample"):
        assert piece in sampling


def test_hub_cells_do_not_hang_offline_and_never_store_a_token(cells):
    assert "cu.hub_reachable()" in cells["peek"].source
    assert "ON_GPU and cu.hub_reachable()" in cells["dreambooth"].source
    share = cells["share"].source
    assert "create_repo(hub_model_id, exist_ok=True)" in share and "upload_folder(" in share
    assert "can_upload = has_token and cu.hub_reachable()" in share
    assert "get_token()" in cells["login"].source


def test_widgets_are_called_where_the_lesson_says(cells):
    assert cells["forward-widget"].source.strip() == "cu.forward_process_widget(noise_scheduler, xb[:8])"
    assert cells["explorer"].source.strip() == "cu.schedule_explorer(xb[:8])"
    assert "cu.model_view_widget(model, noise_scheduler, xb[:8], device=device)" in cells["model-view"].source
    assert "cu.trajectory_widget(xs, pred_x0s, steps=scheduler.timesteps)" in cells["trajectory"].source


def test_training_script_cell_uses_real_options(cells):
    from course_utils.train.args import build_parser

    options = {o for action in build_parser()._actions for o in action.option_strings}
    used = set(re.findall(r"--[a-z_]+", cells["scale"].source + cells["scale-md"].source + cells["project-md"].source))
    assert used and used <= options, f"unknown options: {used - options}"


def _commands(markdown_text):
    """The commands of the bash block: (comment above, argv after the module name)."""
    block = re.search(r"```bash\n(.*?)```", markdown_text, re.S).group(1).replace("\\\n", " ")
    commands, comment = [], ""
    for line in block.splitlines():
        if line.startswith("#"):
            comment = line
        elif "course_utils.train" in line:
            commands.append((comment, line.split("course_utils.train", 1)[1].split()))
    return commands


def test_every_accelerate_command_parses_and_the_cpu_has_its_own(cells, monkeypatch):
    from course_utils.train.args import parse_args

    commands = _commands(cells["scale-md"].source)
    assert len(commands) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = [argv for comment, argv in commands if "a CPU" in comment]
    assert len(cpu) == 1 and "fp16" not in cpu[0]
    assert parse_args(cpu[0]).mixed_precision in ("no", "bf16")
    for comment, argv in commands:
        if "fp16" in argv:
            assert "GPU" in comment and "CPU" not in comment.replace("a CPU", "")
            with pytest.raises(SystemExit):  # the script rightly refuses fp16 without CUDA
                parse_args(argv)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for _, argv in commands:  # valid with a GPU (the upload's token check aside)
        parse_args([a for a in argv if a != "--push_to_hub"])
    assert '["--mixed_precision", "no"]' in cells["scale"].source  # the cell's own command on a CPU


# --------------------------------------------------------------------------- numbers in the text
def test_parameter_counts_in_the_text_are_true(nb, cells):
    gpu, cpu = count("butterflies"), count("butterflies-cpu")
    stated = set(re.findall(r"(\d{1,3}(?:,\d{3})+) parameters", prose(nb)))
    assert stated == {f"{gpu:,}", f"{cpu:,}"}
    text = cells["model-md"].source
    assert says(text, f"with {gpu:,} parameters") and says(text, f"{cpu:,} parameters, about a sixth as many")
    assert round(gpu / cpu) == 6
    assert says(cells["title"].source, f"the unit's original model ({gpu:,} parameters)")
    assert says(cells["title"].source, f"a smaller model of the same design ({cpu:,} parameters)")


def test_the_unit_model_shown_in_markdown_is_the_preset(cells):
    text = cells["model-md"].source
    block = re.search(r"```python\n(UNet2DModel\(.*?\n\))\n```", text, re.S).group(1)
    shown = eval(block, {"UNet2DModel": dict})  # the call's keyword arguments
    assert shown == cu.unet_config("butterflies")
    cpu = cu.unet_config("butterflies-cpu")
    assert f"`{cpu['block_out_channels']}`" in text and cpu["layers_per_block"] == 1
    assert all(c * 2 == g for c, g in zip(cpu["block_out_channels"], cu.unet_config("butterflies")["block_out_channels"]))
    assert cpu["down_block_types"] == cu.unet_config("butterflies")["down_block_types"]  # "the same blocks"
    assert says(text, "one ResNet layer per down block")


def test_normalisation_groups_are_counted_as_groups(nb, cells):
    """norm_num_groups counts groups (diffusers' default: 32), not channels per group."""
    import inspect

    from diffusers import UNet2DModel

    text = cells["model-md"].source
    groups = cu.unet_config("butterflies-cpu")["norm_num_groups"]
    assert inspect.signature(UNet2DModel.__init__).parameters["norm_num_groups"].default == 32
    assert says(text, f"{groups} normalisation groups (`norm_num_groups={groups}`; diffusers' default is 32 groups")
    norm = cu.make_unet("butterflies-cpu").down_blocks[0].resnets[0].norm1
    assert (norm.num_groups, norm.num_channels) == (16, 32)  # "at 32 channels each group holds 2 channels"
    assert says(text, "at 32 channels each group holds 2 channels instead of 1")
    assert "groups of 16 channels" not in prose(nb)


def _size(source, name, monkeypatch, gpu: bool, quick: bool):
    """The value ``name = cu.pick(...)`` in ``source`` takes on a GPU or a CPU, in quick mode or not."""
    line = next(line for line in source.splitlines() if line.startswith(f"{name} = cu.pick("))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    if quick:
        monkeypatch.setenv("COURSE_QUICK", "1")
    else:
        monkeypatch.delenv("COURSE_QUICK", raising=False)
    return eval(line.split("=", 1)[1].split("#")[0], {"cu": cu})


@pytest.mark.parametrize("quick", [False, True])
def test_per_device_sizes_are_chosen_by_pick(cells, monkeypatch, quick):
    """Every size is one cu.pick call (no `full=a if ON_GPU else b` tautologies) and the text says what it does."""
    for cell in cells.values():
        if cell.cell_type == "code":
            assert not re.search(r"cu\.pick\([^)]*if ON_GPU", cell.source), f"cell {cell.id}: use cu.pick(gpu=..., cpu=..., quick=...)"
    sizes = {(name, gpu): _size(cells[cid].source, name, monkeypatch, gpu, quick)
             for cid, name in [("training", "num_epochs"), ("pipeline", "sample_steps"), ("peek", "peek_steps"),
                               ("batches", "batch_size")] for gpu in (True, False)}
    if quick:
        assert sizes[("num_epochs", False)] == 2 and sizes[("sample_steps", False)] == 5 and sizes[("batch_size", True)] == 16
        return
    assert sizes[("num_epochs", True)] == sizes[("num_epochs", False)] == 30
    assert sizes[("sample_steps", True)] == sizes[("peek_steps", True)] == 1000
    assert sizes[("sample_steps", False)] == sizes[("peek_steps", False)] == 100
    assert sizes[("batch_size", True)] == sizes[("batch_size", False)] == 64
    title = cells["title"].source
    assert says(title, "sampled with all 1000 steps") and says(title, "sampled with 100 steps")
    assert says(cells["training-md"].source, "makes 30 passes (epochs)")
    assert says(cells["generate-md"].source, "on a CPU with 100, which")
    assert says(cells["batches-md"].source, "mini-batches of 64 images")


def test_other_numbers_stated_in_the_text_are_the_code_s(cells):
    assert "lr=4e-4" in cells["training"].source and says(cells["training-md"].source, "learning rate of 4e-4")
    assert STANDIN_BUTTERFLIES == 1000 and says(cells["data-helper-md"].source, "1000 drawn stand-in butterflies")
    assert "took about" not in cells["title"].source  # measured run times live in the README


def test_the_data_pipeline_cell_shows_what_the_helper_does(cells):
    code = cells["data-pipeline"].source
    for piece in ("Image.Resampling.BICUBIC", "/ 255 * 2 - 1", ".flip(-1)", 'streaming=True'):
        assert piece in code
    assert "cu.show_source(cu.load_butterflies)" in cells["data-helper-md"].source
    # the cell's preprocessing is the helper's: same resize filter, same scaling
    from course_utils import image_prep

    ns = {"Image": __import__("PIL.Image").Image, "np": __import__("numpy"), "torch": torch}
    exec(code[code.index("def preprocess"):code.index("small = ")], ns)
    img = image_prep.open_image(__import__("course_utils.butterfly_art").butterfly_art.draw_butterfly(1, 96))
    helper = image_prep.to_range(torch.from_numpy(image_prep.image_to_array(img, 32).copy()))
    assert torch.allclose(ns["preprocess"](img), helper, atol=1e-5)


def test_training_uses_the_cosine_schedule_like_the_script(cells):
    from diffusers import DDPMScheduler

    from course_utils.train.args import build_parser

    assert 'beta_schedule="squaredcos_cap_v2"' in cells["train-scheduler"].source
    linear = DDPMScheduler(num_train_timesteps=1000)
    assert linear.alphas_cumprod[500].sqrt() < 0.3  # "by t = 500 ... already below 0.3"
    assert "by $t = 500$, $\\sqrt{\\bar\\alpha_t}$ is already below 0.3" in cells["train-scheduler-md"].source
    defaults = build_parser().parse_args([])
    assert (defaults.beta_schedule, defaults.learning_rate, defaults.train_batch_size, defaults.num_epochs,
            defaults.lr_warmup_steps, defaults.lr_scheduler) == ("squaredcos_cap_v2", 4e-4, 64, 30, 50, "cosine")
    assert defaults.max_grad_norm > 0  # "gradients are clipped"
    assert says(cells["scale-md"].source, "warms up over the first 50 steps")


def test_schedule_facts_in_the_text_are_diffusers_defaults(cells):
    from diffusers import DDPMScheduler

    config = DDPMScheduler(num_train_timesteps=1000).config
    assert (config.beta_schedule, config.beta_start, config.beta_end) == ("linear", 0.0001, 0.02)
    assert "betas rising linearly\nfrom 0.0001 to 0.02" in cells["scheduler-md"].source
    assert "DDPMScheduler(num_train_timesteps=1000)" in cells["scheduler"].source
    assert "torch.linspace(0, 999, 8)" in cells["add-noise"].source
    # "with betas from 0.001 to 0.004 the image is never completely drowned"
    weak = DDPMScheduler(num_train_timesteps=1000, beta_start=0.001, beta_end=0.004)
    assert weak.alphas_cumprod[-1].sqrt() > 0.2 > DDPMScheduler().alphas_cumprod[-1].sqrt() * 10


def test_forward_step_and_diffusers_numbering(cells):
    """Step t scales the previous image by sqrt(1 - beta_t) (no resizing), and diffusers' t = 0 is the paper's t = 1."""
    from diffusers import DDPMScheduler

    text = cells["scheduler-md"].source
    assert "shrinks" not in text
    assert says(text, "step $t$ scales the pixel values of the previous image by $\\sqrt{1-\\beta_t}$")
    assert says(text, "its step `t = 0` is the paper's $t = 1$, so `scheduler.alphas_cumprod[0]` is $\\bar\\alpha_1 = 1 - \\beta_1$")
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    assert torch.isclose(scheduler.alphas_cumprod[0], 1 - scheduler.betas[0]) and float(scheduler.betas[0]) == pytest.approx(1e-4)
    assert torch.allclose(scheduler.alphas_cumprod, torch.cumprod(1 - scheduler.betas, 0))
    # "x_t comes from x_0 in one step": running the steps one by one gives the same mean and variance
    x0, t = torch.tensor(0.7), 300
    mean, var = x0.clone(), torch.tensor(0.0)
    for beta in scheduler.betas[:t + 1]:
        mean, var = mean * (1 - beta).sqrt(), var * (1 - beta) + beta
    assert torch.isclose(mean, scheduler.alphas_cumprod[t].sqrt() * x0) and torch.isclose(var, 1 - scheduler.alphas_cumprod[t])
    assert says(text, "Gaussian noise added step by step is again Gaussian noise")


def test_clipping_is_stated_where_both_x0_appear(cells):
    """The scheduler's pred_original_sample is clipped to [-1, 1] (clip_sample=True); the widget's x0 is not."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    assert scheduler.config.clip_sample is True and scheduler.config.clip_sample_range == 1.0
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[0]
    out = scheduler.step(torch.full((1, 3, 4, 4), -50.0), t, torch.zeros(1, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    assert out.pred_original_sample.abs().max() == 1.0
    from course_utils.widget_frames import split_prediction

    _, x0 = split_prediction(torch.full((1, 3, 4, 4), -50.0), torch.zeros(1, 3, 4, 4), scheduler.alphas_cumprod[t], "epsilon")
    assert x0.abs().max() > 1  # the widget computes x0 as is
    assert says(cells["loop-md"].source, "but clipped to [-1, 1], because the scheduler's `clip_sample` option is on by default")
    assert says(cells["model-view-md"].source, "computed as is, without clipping")


# --------------------------------------------------------------------------- saving and loading
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
    assert [f for f in files if f.endswith(".safetensors")] == ["unet/diffusion_pytorch_model.safetensors"]
    reloaded = DDPMPipeline.from_pretrained(tmp_path / "my-pipeline")
    before, after = pipeline.unet.state_dict(), reloaded.unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert reloaded.scheduler.config.num_train_timesteps == 1000


# --------------------------------------------------------------------------- the key cells, tiny
def test_key_cells_run_without_diffusers_deprecations(cells, tmp_path, monkeypatch):
    """Run the notebook's own cells (data to sharing) on a tiny UNet and 16 px images, in quick
    mode, with every FutureWarning (diffusers' deprecations) turned into an error."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "notebook01"}
    run = lambda cell_id: exec(compile(cells[cell_id].source, cell_id, "exec"), ns)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"(diffusers|huggingface_hub)")
        for cell_id in ("setup", "imports", "login", "peek", "dreambooth", "data-pipeline", "scheduler", "schedules"):
            run(cell_id)
        assert ns["small"].shape == (4, 3, 32, 32) and -1 <= ns["small"].min() < 0 < ns["small"].max() <= 1
        assert torch.equal(ns["flipped"][..., 0], ns["small"][..., -1])
        ns["image_size"] = 16
        ns["data"] = cu.ImageData(torch.rand(8, 3, 16, 16) * 2 - 1, "test images")
        ns["train_batches"] = cu.BatchIterator(ns["data"].images, 4, seed=0)
        ns["xb"] = next(iter(ns["train_batches"]))
        ns["xb"] = torch.cat([ns["xb"], ns["xb"]])  # 8 images, as the notebook's cells expect
        for cell_id in ("explorer", "add-noise", "forward-widget"):
            run(cell_id)
        torch.manual_seed(0)
        ns["model"] = tiny_unet()
        for cell_id in ("shape", "unet-diagram", "train-scheduler", "training", "shortcut", "model-view", "pipeline", "save",
                        "reload", "loop", "trajectory", "share", "samplers"):
            run(cell_id)
    assert len(ns["losses"]) == ns["num_epochs"] * len(ns["train_batches"]) and all(loss > 0 for loss in ns["losses"])
    assert len(ns["pipeline_output"].images) == 8
    assert (tmp_path / "my-pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert "pipeline = DDPMPipeline.from_pretrained(\"your-username/" in (tmp_path / "my-pipeline" / "README.md").read_text()
    assert len(ns["xs"]) == len(ns["pred_x0s"]) == len(ns["scheduler"].timesteps) == ns["sample_steps"]
    assert ns["x"].shape == (8, 3, 16, 16) and torch.isfinite(ns["x"]).all()
    assert list(ns["comparison"]) == ["DDPM, 2 steps", "DDIM, 2 steps", "DDPM, 3 steps", "DDIM, 3 steps"]


def test_stated_cpu_run_time_is_in_the_readme_where_the_benchmark_reads_it():
    from benchmarks import notebook01_cpu as bench

    minutes = bench.stated_minutes((ROOT / "README.md").read_text(encoding="utf-8"))
    assert 1 <= minutes <= 20  # the brief: the full notebook finishes within 20 minutes on 2 cores


# --------------------------------------------------------------------------- what the original unit had
def test_credit_and_reading_flow(cells):
    title = cells["title"].source
    assert "https://github.com/huggingface/diffusion-models-class" in title
    assert says(title, "Jonathan Whitaker and Lewis Tunstall") and says(title, "rewritten and tested edition")
    assert says(title, "**Running this notebook.**") and title.count("\n* **") == 0  # one compact note, no run-mode bullets
    assert len(cells["login-md"].source.split()) < 90  # the token section stays short


def test_shortcut_dreambooth_exercise_and_project(cells):
    shortcut = cells["shortcut"].source
    assert "USE_PRETRAINED = False" in shortcut and "USE_PRETRAINED and cu.hub_reachable()" in shortcut
    assert "DDPMScheduler.from_config(pretrained_pipeline.scheduler.config)" in shortcut
    exercise = cells["dreambooth-exercise-md"].source
    for piece in ("`sks`", "`num_inference_steps`", "`guidance_scale`", "1 turns the guidance off"):
        assert piece in exercise
    project = cells["project-md"].source
    assert "https://huggingface.co/join/discord" in project and "#diffusion-models-class" in project


def test_guidance_scale_one_turns_guidance_off():
    """The DreamBooth exercise's claim, from diffusers' source: guidance needs guidance_scale > 1."""
    import importlib.util

    package = Path(importlib.util.find_spec("diffusers").origin).parent
    source = (package / "pipelines" / "stable_diffusion" / "pipeline_stable_diffusion.py").read_text()
    assert "return self._guidance_scale > 1 and" in source  # do_classifier_free_guidance


def test_ddim_comparison(cells):
    import inspect

    from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler

    code = cells["samplers"].source
    assert "DDIMScheduler.from_config(noise_scheduler.config)" in code and "full=(10, 25, 50)" in code
    assert inspect.signature(DDIMPipeline.__call__).parameters["eta"].default == 0.0  # "with its default eta = 0"
    assert says(cells["exercises-md"].source, "compares 10, 25 and 50 steps of both")
    ddim = DDIMScheduler.from_config(DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").config)
    assert ddim.config.beta_schedule == "squaredcos_cap_v2"  # the same trained schedule


def test_unet_diagram_cell_draws_the_model(cells):
    assert cells["unet-diagram"].source.strip().startswith("cu.draw_unet(model)")
    assert says(cells["unet-diagram-md"].source, "drawn by `cu.draw_unet` from the model's own config")
