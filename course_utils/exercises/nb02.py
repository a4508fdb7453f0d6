"""The exercises of "Diffusion Models from Scratch" (notebook 02), with checks that answer back.

Each check runs the learner's answer on small fixed inputs and names the first problem it finds
in one sentence; see ``course_utils.exercises`` for the mechanism.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import Exercise, Text, Wrong

__all__ = ["ex1", "ex2", "ex3", "ex4", "ex5", "ex6"]


def _wrong(en: str, zh: str):
    raise Wrong(Text(en=en, zh=zh))


def _output(result) -> torch.Tensor:
    """A model's output tensor (``UNet2DModel`` wraps it in ``.sample``)."""
    return getattr(result, "sample", result)


def stand_in_digits(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` digit-sized images in [0, 1]: a bright bar and a box on black (no download needed; the
    checks feed them to the learner's model, and the notebook-02 tests use them as stand-in data)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    for img in x:
        r, c = torch.randint(4, 14, (2,), generator=g).tolist()
        img[0, r:r + 10, c:c + 3] = 1.0
        img[0, 4:24, 20:22] = 0.8
    return x


def _corrupt(x: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """The lesson's corruption, with its own seeded noise."""
    return x * (1 - amount) + torch.rand(x.shape, generator=generator) * amount


# --- 1. FashionMNIST ---------------------------------------------------------------------------
def _check_fashion(data):
    images = getattr(data, "images", None)
    if not isinstance(images, torch.Tensor):
        _wrong("Pass the object that cu.load_mnist returns (it has .images, .labels and .classes).",
               "请传入 cu.load_mnist 返回的对象（它有 .images、.labels 和 .classes）。")
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        _wrong(f"The images have shape {tuple(images.shape)}; FashionMNIST's are (N, 1, 28, 28).",
               f"图像的形状是 {tuple(images.shape)}；FashionMNIST 的图像应为 (N, 1, 28, 28)。")
    if images.min() < 0 or images.max() > 1:
        _wrong(f"The pixels range from {images.min():.2f} to {images.max():.2f}; this lesson works in "
               "[0, 1] (the loader's default value_range).",
               f"像素值范围是 {images.min():.2f} 到 {images.max():.2f}；本课使用 [0, 1]（加载函数默认的 value_range）。")
    classes = list(getattr(data, "classes", []))
    if "Sneaker" not in classes:
        _wrong(f"These are {'digits' if classes[:1] == ['0'] else 'not FashionMNIST'} ({data.source}): "
               'load cu.load_mnist("fashion_mnist"), which needs the Hub.',
               f"这些是{'数字' if classes[:1] == ['0'] else '其他数据'}（{data.source}）："
               '请用 cu.load_mnist("fashion_mnist") 加载，它需要连接 Hub。')
    return Text(en=f"{len(images):,} FashionMNIST images from {data.source}: rerun the notebook on them.",
                zh=f"来自 {data.source} 的 {len(images):,} 张 FashionMNIST 图像：用它们重新运行整个笔记本吧。")


ex1 = Exercise(
    "nb02.ex1", _check_fashion,
    hint=Text(en='In the cell "data", replace `cu.load_mnist(limit=...)` by '
                 '`cu.load_mnist("fashion_mnist", limit=...)`, then pass `data` to the check.',
              zh='在单元格 “data” 中把 `cu.load_mnist(limit=...)` 换成 '
                 '`cu.load_mnist("fashion_mnist", limit=...)`，再把 `data` 传给检查。'),
    solution=Text(en='```python\ndata = cu.load_mnist("fashion_mnist", limit=cu.pick(full=None, quick=512))\n'
                     'cu.exercises.nb02.ex1.check(data)\n```\nThen run the rest of the notebook: '
                     'the same code learns clothes.',
                  zh='```python\ndata = cu.load_mnist("fashion_mnist", limit=cu.pick(full=None, quick=512))\n'
                     'cu.exercises.nb02.ex1.check(data)\n```\n然后运行笔记本的其余部分：同样的代码就能学会生成服饰。'),
)


# --- 2. The sampler as a function --------------------------------------------------------------
class _Recorder(nn.Module):
    """A stand-in model: returns a fixed "prediction" and records every input it is given."""

    def __init__(self, prediction: torch.Tensor):
        super().__init__()
        self.prediction, self.inputs = prediction, []

    def forward(self, x):
        self.inputs.append(x.detach().cpu().clone())
        return self.prediction[:1].expand(len(x), -1, -1, -1).to(x.device)


def _check_sample(sample):
    n_steps, n_images = 4, 3
    prediction = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = _Recorder(prediction)
    try:
        result = sample(model, n_steps, n_images=n_images)
    except Exception as error:  # the learner's code: say what happened, in one line
        _wrong(f"sample(model, {n_steps}, n_images={n_images}) raised {type(error).__name__}: {error}",
               f"sample(model, {n_steps}, n_images={n_images}) 抛出了 {type(error).__name__}：{error}")
    if not isinstance(result, torch.Tensor) or tuple(result.shape) != (n_images, 1, 28, 28):
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        _wrong(f"It returned {shape}; expected a tensor of shape (n_images, 1, 28, 28) = ({n_images}, 1, 28, 28).",
               f"它返回了 {shape}；应返回形状为 (n_images, 1, 28, 28) = ({n_images}, 1, 28, 28) 的张量。")
    if len(model.inputs) != n_steps:
        _wrong(f"It called the model {len(model.inputs)} times for n_steps={n_steps}: call it once per step.",
               f"n_steps={n_steps} 时它调用了模型 {len(model.inputs)} 次：应每步调用一次。")
    start = model.inputs[0]
    if start.min() < 0 or start.max() > 1:
        _wrong("It starts from values outside [0, 1]: start from torch.rand (uniform noise, like our "
               "corruption's), not torch.randn.",
               "起点的取值超出了 [0, 1]：应从 torch.rand（和我们的破坏过程一样的均匀噪声）开始，而不是 torch.randn。")
    xs = model.inputs + [result.detach().cpu()]
    for i in range(n_steps):
        wanted = 1 / (n_steps - i)
        expected = xs[i] + (prediction - xs[i]) * wanted
        if not torch.allclose(xs[i + 1], expected, atol=1e-5):
            moved = ((xs[i + 1] - xs[i]) / (prediction - xs[i])).median().item()
            _wrong(f"Step {i} moved {moved:.3f} of the way to the prediction; with n_steps={n_steps} it should "
                   f"move 1 / (n_steps - i) = {wanted:.3f}.",
                   f"第 {i} 步朝预测移动了两者距离的 {moved:.3f}；n_steps={n_steps} 时应移动 "
                   f"1 / (n_steps - i) = {wanted:.3f}。")
    return Text(en="that is our sampler: now compare 5, 10 and 100 steps with the trained `net`.",
                zh="这就是我们的采样器：现在用训练好的 `net` 比较 5、10 和 100 步的结果吧。")


ex2 = Exercise(
    "nb02.ex2", _check_sample,
    hint=Text(en='Start from the cell "sampling-5": put its loop in a function, with `x = torch.rand(n_images, 1, 28, 28)` '
                 "at the start and `return x` at the end.",
              zh="从单元格 “sampling-5” 出发：把其中的循环放进一个函数，开头写 "
                 "`x = torch.rand(n_images, 1, 28, 28)`，最后 `return x`。"),
    solution=Text(en=("```python\ndef sample(model, n_steps, n_images=8):\n"
                      "    x = torch.rand(n_images, 1, 28, 28, device=device)\n"
                      "    for i in range(n_steps):\n        with torch.no_grad():\n            pred = model(x)\n"
                      "        mix_factor = 1 / (n_steps - i)\n        x = x * (1 - mix_factor) + pred * mix_factor\n"
                      "    return x\n\n"
                      "cu.exercises.nb02.ex2.check(sample)\n"
                      'cu.plot_panels({f"{n} steps": sample(net, n).cpu() for n in (5, 10, 100)})\n```'),
                  zh=("```python\ndef sample(model, n_steps, n_images=8):\n"
                      "    x = torch.rand(n_images, 1, 28, 28, device=device)\n"
                      "    for i in range(n_steps):\n        with torch.no_grad():\n            pred = model(x)\n"
                      "        mix_factor = 1 / (n_steps - i)\n        x = x * (1 - mix_factor) + pred * mix_factor\n"
                      "    return x\n\n"
                      "cu.exercises.nb02.ex2.check(sample)\n"
                      'cu.plot_panels({f"{n} 步": sample(net, n).cpu() for n in (5, 10, 100)})\n```')),
)


# --- 3. Another mix schedule --------------------------------------------------------------------
def _check_mix_factors(mix_factors):
    n_steps = 10
    try:
        factors = [float(f) for f in mix_factors(n_steps)]
    except Exception as error:
        _wrong(f"mix_factors({n_steps}) raised {type(error).__name__}: {error}",
               f"mix_factors({n_steps}) 抛出了 {type(error).__name__}：{error}")
    if len(factors) != n_steps:
        _wrong(f"mix_factors({n_steps}) returned {len(factors)} fractions: return one per step.",
               f"mix_factors({n_steps}) 返回了 {len(factors)} 个比例：应每步一个。")
    for i, f in enumerate(factors):
        if not 0 <= f <= 1:
            _wrong(f"The fraction of step {i} is {f:g}: each must lie between 0 (stay put) and 1 (jump to "
                   "the prediction).",
                   f"第 {i} 步的比例是 {f:g}：每个比例都必须在 0（原地不动）和 1（直接跳到预测）之间。")
    left = math.prod(1 - f for f in factors)
    return Text(
        en=f"a valid schedule. It leaves {left:.1%} of the starting noise in the sample (ours leaves none: "
           "its last fraction is 1). Now sample with it and compare.",
        zh=f"这是一个有效的调度。它在样本中留下了起始噪声的 {left:.1%}（我们的调度一点不留：最后一步的比例是 1）。"
           "现在用它采样并比较一下吧。")


ex3 = Exercise(
    "nb02.ex3", _check_mix_factors,
    hint=Text(en="`def mix_factors(n_steps): return [0.3] * n_steps` is a constant fraction; to use it, replace "
                 "`mix_factor = 1 / (n_steps - i)` in your sampler by `mix_factor = factors[i]`, with "
                 "`factors = mix_factors(n_steps)` before the loop.",
              zh="`def mix_factors(n_steps): return [0.3] * n_steps` 就是一个恒定的比例；使用时把采样器中的 "
                 "`mix_factor = 1 / (n_steps - i)` 换成 `mix_factor = factors[i]`，"
                 "并在循环之前写 `factors = mix_factors(n_steps)`。"),
    solution=Text(en=("```python\ndef mix_factors(n_steps):\n    return [0.3] * (n_steps - 1) + [1.0]  "
                      "# constant, then all the way\n\ncu.exercises.nb02.ex3.check(mix_factors)\n```\n"
                      "Without the final 1.0, 0.7 ** n_steps of the starting noise stays in the sample."),
                  zh=("```python\ndef mix_factors(n_steps):\n    return [0.3] * (n_steps - 1) + [1.0]  "
                      "# 先恒定，最后一步走完\n\ncu.exercises.nb02.ex3.check(mix_factors)\n```\n"
                      "如果没有最后的 1.0，样本中会留下起始噪声的 0.7 ** n_steps。")),
)


# --- 4. A wider or deeper BasicUNet ------------------------------------------------------------
UNIT_PARAMETERS = 309_057


def _check_bigger_unet(model_class, steps: int = 25):
    try:
        model = model_class()
        out = _output(model(torch.rand(2, 1, 28, 28)))
    except Exception as error:
        _wrong(f"Building the model and calling it on a (2, 1, 28, 28) batch raised {type(error).__name__}: {error}",
               f"构建模型并在 (2, 1, 28, 28) 的批次上调用它时抛出了 {type(error).__name__}：{error}")
    if tuple(out.shape) != (2, 1, 28, 28):
        _wrong(f"For a (2, 1, 28, 28) input it returns {tuple(out.shape)}: it must return an image of the input's size.",
               f"输入为 (2, 1, 28, 28) 时它返回 {tuple(out.shape)}：输出必须与输入图像大小相同。")
    n = sum(p.numel() for p in model.parameters())
    if n == UNIT_PARAMETERS:
        _wrong(f"It still has the unit's {n:,} parameters: add channels (wider) or layers (deeper).",
               f"它的参数仍是原来的 {n:,} 个：请增加通道（更宽）或层（更深）。")
    if n < UNIT_PARAMETERS:
        _wrong(f"It has {n:,} parameters, fewer than the unit's {UNIT_PARAMETERS:,}: wider or deeper means more.",
               f"它只有 {n:,} 个参数，比原来的 {UNIT_PARAMETERS:,} 个还少：更宽或更深意味着更多参数。")
    torch.manual_seed(0)
    x = stand_in_digits(8)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        amount = torch.rand(len(x), 1, 1, 1, generator=g)
        noisy = x * (1 - amount) + torch.rand(x.shape, generator=g) * amount
        loss = nn.functional.mse_loss(_output(model(noisy)), x)
        opt.zero_grad()
        try:
            loss.backward()
        except RuntimeError as error:
            _wrong(f"Training it failed ({error}): the output must come from the layers, with nothing detached.",
                   f"训练时出错（{error}）：输出必须由各层计算得到，中间不能有张量被 detach。")
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    if not last < 0.8 * first:
        _wrong(f"Its loss did not fall in {steps} steps on a fixed batch (from {first:.4f} to {last:.4f}): check "
               "that forward uses every layer and that nothing is detached.",
               f"在固定批次上训练 {steps} 步后损失没有下降（从 {first:.4f} 到 {last:.4f}）：请检查 forward "
               "是否用到了每一层，以及有没有张量被 detach。")
    return Text(en=f"{n:,} parameters ({n / UNIT_PARAMETERS:.1f} x the unit's), and it learns. Rerun the training "
                   "and sampling cells to see whether it pays off.",
                zh=f"{n:,} 个参数（原来的 {n / UNIT_PARAMETERS:.1f} 倍），而且能学习。重新运行训练和采样单元格，"
                   "看看是否值得。")


ex4 = Exercise(
    "nb02.ex4", _check_bigger_unet,
    hint=Text(en="Wider: raise the channel counts (32 -> 64, 64 -> 128) in both `down_layers` and `up_layers`, "
                 "keeping each layer's input equal to the previous one's output. Deeper: add a convolution that "
                 "keeps the channels, e.g. `nn.Conv2d(64, 64, 5, padding=2)` after the last down layer and before "
                 "the first up layer.",
              zh="更宽：同时提高 `down_layers` 和 `up_layers` 中的通道数（32 -> 64，64 -> 128），"
                 "并保证每一层的输入等于上一层的输出。更深：加一个不改变通道数的卷积，例如在最后一个下行层之后、"
                 "第一个上行层之前加 `nn.Conv2d(64, 64, 5, padding=2)`。"),
    solution=Text(en=("Wider, every channel count doubled:\n```python\n"
                      "self.down_layers = nn.ModuleList([\n    nn.Conv2d(in_channels, 64, kernel_size=5, padding=2),\n"
                      "    nn.Conv2d(64, 128, kernel_size=5, padding=2),\n    nn.Conv2d(128, 128, kernel_size=5, padding=2),\n])\n"
                      "self.up_layers = nn.ModuleList([\n    nn.Conv2d(128, 128, kernel_size=5, padding=2),\n"
                      "    nn.Conv2d(128, 64, kernel_size=5, padding=2),\n    nn.Conv2d(64, out_channels, kernel_size=5, padding=2),\n])\n"
                      "```\nthen `cu.exercises.nb02.ex4.check(BasicUNet)`. About four times the parameters and the compute."),
                  zh=("更宽，每个通道数加倍：\n```python\n"
                      "self.down_layers = nn.ModuleList([\n    nn.Conv2d(in_channels, 64, kernel_size=5, padding=2),\n"
                      "    nn.Conv2d(64, 128, kernel_size=5, padding=2),\n    nn.Conv2d(128, 128, kernel_size=5, padding=2),\n])\n"
                      "self.up_layers = nn.ModuleList([\n    nn.Conv2d(128, 128, kernel_size=5, padding=2),\n"
                      "    nn.Conv2d(128, 64, kernel_size=5, padding=2),\n    nn.Conv2d(64, out_channels, kernel_size=5, padding=2),\n])\n"
                      "```\n然后运行 `cu.exercises.nb02.ex4.check(BasicUNet)`。参数量和计算量都约为原来的四倍。")),
)


# --- 5. The toy model told the amount of noise ---------------------------------------------------
def _check_told_amount(model, images):
    x = images[:16].detach().float().cpu()
    if x.min() < 0:
        _wrong("Pass the [0, 1] digits (for example `digits`), not images scaled to [-1, 1].",
               "请传入 [0, 1] 范围的数字图像（例如 `digits`），而不是缩放到 [-1, 1] 的图像。")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    errors, outputs = {}, {}
    with torch.no_grad():
        for amount in (0.3, 0.9):
            noisy = _corrupt(x, amount, g)
            for told in (0.3, 0.9):
                t = torch.full((len(x),), round(told * 999), dtype=torch.long, device=device)
                try:
                    pred = _output(model(noisy.to(device), t)).float().cpu()
                except Exception as error:
                    _wrong(f"Calling model(x, t) raised {type(error).__name__}: {error}. Use a model that takes the "
                           'timestep, such as cu.make_unet("mnist-cpu").',
                           f"调用 model(x, t) 时抛出了 {type(error).__name__}：{error}。请使用以时间步为输入的模型，"
                           '例如 cu.make_unet("mnist-cpu")。')
                outputs[amount, told] = pred
                errors[amount, told] = nn.functional.mse_loss(pred, x).item()
    if all(torch.allclose(outputs[a, 0.3], outputs[a, 0.9], atol=1e-6) for a in (0.3, 0.9)):
        _wrong("Your model gives the same output whatever timestep it is told: in training, pass "
               "(noise_amount * 999).round().long() as the timestep, not 0.",
               "无论告诉它哪个时间步，模型的输出都一样：训练时应把 (noise_amount * 999).round().long() "
               "作为时间步传入，而不是 0。")
    for amount, wrong_told in ((0.3, 0.9), (0.9, 0.3)):
        right, wrong = errors[amount, amount], errors[amount, wrong_told]
        if not right < wrong:
            _wrong(f"For digits corrupted by {amount}, your model is no better told {amount} than told {wrong_told} "
                   f"(MSE {right:.4f} against {wrong:.4f}): check that each image's timestep is its own amount, "
                   "and train longer.",
                   f"对被破坏了 {amount} 的数字，告诉模型 {amount} 并不比告诉它 {wrong_told} 更好"
                   f"（MSE {right:.4f} 对 {wrong:.4f}）：请检查每张图像的时间步是否就是它自己的 amount，并训练更久。")
    return Text(en=f"told the right amount, it does better (MSE {errors[0.3, 0.3]:.4f} against {errors[0.3, 0.9]:.4f} at "
                   f"0.3, {errors[0.9, 0.9]:.4f} against {errors[0.9, 0.3]:.4f} at 0.9): it uses the timestep.",
                zh=f"告诉它正确的 amount 时效果更好（0.3 时 MSE {errors[0.3, 0.3]:.4f} 对 {errors[0.3, 0.9]:.4f}，"
                   f"0.9 时 {errors[0.9, 0.9]:.4f} 对 {errors[0.9, 0.3]:.4f}）：它用上了时间步。")


_EX5_CODE = """```python
model = cu.make_unet("mnist-cpu").to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for step, (x, y) in zip(range(1000), endless(train_batches)):  # endless: see "ddpm-training"
    noise_amount = torch.rand(x.shape[0], device=device)
    timesteps = (noise_amount * 999).round().long()  # the amount, as a timestep
    loss = loss_fn(model(corrupt(x, noise_amount), timesteps).sample, x)
    opt.zero_grad()
    loss.backward()
    opt.step()

cu.exercises.nb02.ex5.check(model, digits)

n_steps = 40
x = torch.rand(16, 1, 28, 28, device=device)
for i in range(n_steps):
    t = torch.full((len(x),), round((1 - i / n_steps) * 999), device=device)
    with torch.no_grad():
        pred = model(x, t).sample
    mix_factor = 1 / (n_steps - i)
    x = x * (1 - mix_factor) + pred * mix_factor
cu.show_images(x.cpu())
```"""

ex5 = Exercise(
    "nb02.ex5", _check_told_amount,
    hint=Text(en='Copy the training cell "training" and change two lines: the model is `cu.make_unet("mnist-cpu")`, '
                 "and it is called as `model(noisy_x, (noise_amount * 999).round().long()).sample`. Count steps "
                 "rather than epochs: 1,000 steps are a start, and the check says if it needs more.",
              zh='复制训练单元格 “training” 并改两行：模型换成 `cu.make_unet("mnist-cpu")`，调用方式改为 '
                 "`model(noisy_x, (noise_amount * 999).round().long()).sample`。按步数而不是轮数来计："
                 "1,000 步可以作为起点，检查会告诉你是否需要更多。"),
    solution=Text(en=_EX5_CODE, zh=_EX5_CODE.replace("# the amount, as a timestep", "# 把 amount 当作时间步")
                  .replace('# endless: see "ddpm-training"', '# endless 见 “ddpm-training”')),
)


# --- 6. BasicUNet, the DDPM way -----------------------------------------------------------------
def _linear_alphas_cumprod(steps: int = 1000) -> torch.Tensor:
    """DDPM's linear schedule (beta from 1e-4 to 0.02), as DDPMScheduler's default."""
    return torch.cumprod(1 - torch.linspace(1e-4, 0.02, steps, dtype=torch.float64), 0).float()


def _check_noise_predictor(model, images):
    x0 = images[:16].detach().float().cpu()
    if x0.min() >= 0:
        x0 = x0 * 2 - 1  # the [0, 1] digits the notebook has: DDPM works in [-1, 1]
    device = next(model.parameters()).device
    a_bar = _linear_alphas_cumprod()
    g = torch.Generator().manual_seed(0)
    errors, lowest = [], math.inf
    with torch.no_grad():
        for t in (300, 500, 700):
            eps = torch.randn(x0.shape, generator=g)
            x_t = a_bar[t].sqrt() * x0 + (1 - a_bar[t]).sqrt() * eps
            try:
                pred = _output(model(x_t.to(device))).float().cpu()
            except Exception as error:
                _wrong(f"Calling model(x_t) raised {type(error).__name__}: {error}. BasicUNet takes no timestep: "
                       "call it as net(x).",
                       f"调用 model(x_t) 时抛出了 {type(error).__name__}：{error}。BasicUNet 没有时间步输入："
                       "请以 net(x) 的方式调用。")
            if tuple(pred.shape) != tuple(x0.shape):
                _wrong(f"For a {tuple(x0.shape)} batch it returns {tuple(pred.shape)}: the noise has the image's shape.",
                       f"输入为 {tuple(x0.shape)} 时它返回 {tuple(pred.shape)}：噪声的形状与图像相同。")
            lowest = min(lowest, pred.min().item())
            errors.append(nn.functional.mse_loss(pred, eps).item())
    if lowest >= -0.2785:
        _wrong(f"Its outputs never go below {lowest:.3f}: the SiLU after the last layer is still there (SiLU >= -0.278), "
               "so it cannot predict the negative half of Gaussian noise; apply self.act to all but the last up layer.",
               f"它的输出从不低于 {lowest:.3f}：最后一层之后的 SiLU 还在（SiLU >= -0.278），所以无法预测高斯噪声的负半部分；"
               "请只对最后一个上行层以外的层使用 self.act。")
    error = sum(errors) / len(errors)
    if error > 0.5:
        _wrong(f"Its noise prediction is hardly better than predicting zeros (MSE {error:.3f}; zeros give 1.0): "
               "train it longer on the noise, with add_noise and a random timestep per image.",
               f"它的噪声预测几乎不比全零预测好（MSE {error:.3f}；全零预测为 1.0）：请用 add_noise 和每张图像随机的时间步，"
               "以噪声为目标训练更久。")
    return Text(en=f"its noise prediction has an MSE of {error:.3f} at t = 300, 500 and 700 (zeros give 1.0). "
                   "Now sample with ddpm_step and compare with the DDPM model's samples.",
                zh=f"它在 t = 300、500、700 时噪声预测的 MSE 为 {error:.3f}（全零预测为 1.0）。"
                   "现在用 ddpm_step 采样，并与 DDPM 模型的样本比较。")


_EX6_CODE = """```python
class NoiseUNet(BasicUNet):
    def forward(self, x):
        h = []
        for i, layer in enumerate(self.down_layers):
            x = self.act(layer(x))
            if i < 2:
                h.append(x)
                x = self.downscale(x)
        for i, layer in enumerate(self.up_layers):
            if i > 0:
                x = self.upscale(x)
                x = x + h.pop()
            x = layer(x)
            if i < len(self.up_layers) - 1:  # no SiLU after the last layer
                x = self.act(x)
        return x

net6 = NoiseUNet().to(device)
opt = torch.optim.AdamW(net6.parameters(), lr=1e-3)
for step, images in zip(range(1000), endless(ddpm_batches)):
    clean = images * 2 - 1
    eps = torch.randn_like(clean)
    t_batch = torch.randint(0, T, (len(clean),), device=device)
    loss = nn.functional.mse_loss(net6(noise_scheduler.add_noise(clean, eps, t_batch)), eps)
    opt.zero_grad()
    loss.backward()
    opt.step()

cu.exercises.nb02.ex6.check(net6, digits)

x = start_x  # the DDPM model's starting noise
for t in step_scheduler.timesteps.tolist():
    with torch.no_grad():
        x = ddpm_step(net6(x), t, x, t - jump)
cu.show_images(x.cpu(), value_range=(-1, 1))
```"""

ex6 = Exercise(
    "nb02.ex6", _check_noise_predictor,
    hint=Text(en='Subclass BasicUNet and change only `forward`: call `self.act` for all but the last up layer. Train it '
                 'with the loop of "ddpm-training", replacing `ddpm(noisy, t_batch).sample` by `net6(noisy)`; '
                 "for example 1,000 steps of 64 images, as many as the DDPM model's on a CPU "
                 "(the check says if it needs more).",
              zh="继承 BasicUNet，只改 `forward`：除最后一个上行层外都调用 `self.act`。用 “ddpm-training” 的循环训练它，"
                 "把 `ddpm(noisy, t_batch).sample` 换成 `net6(noisy)`；例如 1,000 步、每步 64 张图像，"
                 "与 DDPM 模型在 CPU 上的训练量相同（检查会告诉你是否需要更多）。"),
    solution=Text(en=_EX6_CODE, zh=_EX6_CODE.replace("# no SiLU after the last layer", "# 最后一层之后不用 SiLU")
                  .replace("# the DDPM model's starting noise", "# 与 DDPM 模型相同的起始噪声")),
)
