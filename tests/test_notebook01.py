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

import nbformat
import pytest
import torch

import course_utils as cu
from course_utils.data_sources import STANDIN_BUTTERFLIES

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_introduction_to_diffusers.ipynb"


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def cells(nb):
    """Cells by id (the generator gives every cell a stable id)."""
    return {c.id: c for c in nb.cells}


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def markdown(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


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
    from course_utils.train_args import build_parser

    options = {o for action in build_parser()._actions for o in action.option_strings}
    used = set(re.findall(r"--[a-z_]+", cells["scale"].source + cells["scale-md"].source))
    assert used and used <= options, f"unknown options: {used - options}"


# --------------------------------------------------------------------------- numbers in the text
def test_parameter_counts_in_the_text_are_true(nb, cells):
    gpu, cpu = count("butterflies"), count("butterflies-cpu")
    stated = set(re.findall(r"(\d{1,3}(?:,\d{3})+) parameters", markdown(nb)))
    assert stated == {f"{gpu:,}", f"{cpu:,}"}
    text = cells["model-md"].source
    assert f"with {gpu:,} parameters" in text and f"{cpu:,} parameters, about six times fewer" in text
    assert round(gpu / cpu) == 6
    assert f"original model ({gpu:,} parameters)" in cells["title"].source
    assert f"same design\n  ({cpu:,} parameters)" in cells["title"].source


def test_the_unit_model_shown_in_markdown_is_the_preset(cells):
    text = cells["model-md"].source
    block = re.search(r"```python\n(UNet2DModel\(.*?\n\))\n```", text, re.S).group(1)
    shown = eval(block, {"UNet2DModel": dict})  # the call's keyword arguments
    assert shown == cu.unet_config("butterflies")
    cpu = cu.unet_config("butterflies-cpu")
    assert f"`{cpu['block_out_channels']}`" in text and cpu["layers_per_block"] == 1
    assert "one ResNet layer per down block" in text and f"groups of {cpu['norm_num_groups']} channels" in text
    assert all(c * 2 == g for c, g in zip(cpu["block_out_channels"], cu.unet_config("butterflies")["block_out_channels"]))
    assert cpu["down_block_types"] == cu.unet_config("butterflies")["down_block_types"]  # "the same blocks"


def _full_value(source, name):
    """The CPU value of ``name = cu.pick(full=<gpu> if ON_GPU else <cpu>, quick=...)``."""
    return int(re.search(name + r" = cu\.pick\(full=(\d+) if ON_GPU else (\d+), quick=\d+\)", source).group(2))


def test_sizes_stated_in_the_text_are_the_code_s(cells):
    epochs = _full_value(cells["training"].source, "num_epochs")
    steps = _full_value(cells["pipeline"].source, "sample_steps")
    assert "num_epochs = cu.pick(full=30 if ON_GPU" in cells["training"].source
    assert "sample_steps = cu.pick(full=1000 if ON_GPU" in cells["pipeline"].source
    title = cells["title"].source
    assert "for 30 epochs\n  with batches of 64 images" in title
    assert epochs == 30 and "trained for as many epochs, and" in title  # as many as on a GPU
    assert f"{steps} sampling steps\n  instead of 1000" in title
    assert "makes 30 passes (epochs)" in cells["training-md"].source
    assert f"on a CPU with {steps}, which" in cells["generate-md"].source
    assert "batch_size = cu.pick(full=64, quick=" in cells["batches"].source and "mini-batches of 64 images" in cells["batches-md"].source
    assert "lr=4e-4" in cells["training"].source and "learning rate of 4e-4" in cells["training-md"].source
    assert "peek_steps = cu.pick(full=1000 if ON_GPU else" in cells["peek"].source
    assert STANDIN_BUTTERFLIES == 1000 and "1000 colourful" in cells["data-md"].source


def test_training_uses_the_cosine_schedule_like_the_script(cells):
    from diffusers import DDPMScheduler

    from course_utils.train_args import build_parser

    assert 'beta_schedule="squaredcos_cap_v2"' in cells["train-scheduler"].source
    linear = DDPMScheduler(num_train_timesteps=1000)
    assert linear.alphas_cumprod[500].sqrt() < 0.3  # "by t = 500 ... already below 0.3"
    assert "by $t = 500$, $\\sqrt{\\bar\\alpha_t}$ is already below 0.3" in cells["train-scheduler-md"].source
    defaults = build_parser().parse_args([])
    assert (defaults.beta_schedule, defaults.learning_rate, defaults.train_batch_size, defaults.num_epochs,
            defaults.lr_warmup_steps, defaults.lr_scheduler) == ("squaredcos_cap_v2", 4e-4, 64, 30, 50, "cosine")
    assert defaults.max_grad_norm > 0  # "gradients are clipped"
    assert "warms up over the first 50 steps" in cells["scale-md"].source


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
        for cell_id in ("setup", "imports", "login", "peek", "dreambooth", "scheduler", "schedules"):
            run(cell_id)
        ns["image_size"] = 16
        ns["data"] = cu.ImageData(torch.rand(8, 3, 16, 16) * 2 - 1, "test images")
        ns["train_batches"] = cu.BatchIterator(ns["data"].images, 4, seed=0)
        ns["xb"] = next(iter(ns["train_batches"]))
        ns["xb"] = torch.cat([ns["xb"], ns["xb"]])  # 8 images, as the notebook's cells expect
        for cell_id in ("explorer", "add-noise", "forward-widget"):
            run(cell_id)
        torch.manual_seed(0)
        ns["model"] = tiny_unet()
        for cell_id in ("shape", "train-scheduler", "training", "model-view", "pipeline", "save", "reload", "loop", "trajectory",
                        "share"):
            run(cell_id)
    assert len(ns["losses"]) == ns["num_epochs"] * len(ns["train_batches"]) and all(loss > 0 for loss in ns["losses"])
    assert len(ns["pipeline_output"].images) == 8
    assert (tmp_path / "my-pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert "pipeline = DDPMPipeline.from_pretrained(\"your-username/" in (tmp_path / "my-pipeline" / "README.md").read_text()
    assert len(ns["xs"]) == len(ns["pred_x0s"]) == len(ns["scheduler"].timesteps) == ns["sample_steps"]
    assert ns["x"].shape == (8, 3, 16, 16) and torch.isfinite(ns["x"]).all()


def test_stated_cpu_run_time_is_what_the_benchmark_checks(nb):
    from benchmarks import notebook01_cpu as bench

    minutes = bench.stated_minutes(nb)
    assert 1 <= minutes <= 20  # the brief: the full notebook finishes within 20 minutes on 2 cores
