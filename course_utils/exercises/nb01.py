"""The exercises of "Introduction to Diffusers" that ask for code, each with a check, a hint and a
solution in English and Chinese::

    cu.exercises.nb01.schedule.check(my_scheduler)          # section "The scheduler"
    cu.exercises.nb01.add_noise.check(my_add_noise, noise_scheduler)
    cu.exercises.nb01.no_attention.check(small_model)      # "Exercises", item 2

A check names the first problem it finds in one sentence (raising ``Wrong``), or says what works.
"""
from __future__ import annotations

import torch

from . import Exercise, Text, Wrong

# ---------------------------------------------------------------------------------------------
# A schedule that keeps the picture longer and still ends in noise (section "The scheduler").

SIGNAL_AT_500 = 0.5  # sqrt(alpha_bar) at t = 500 must be at least this
SIGNAL_AT_END = 0.05  # and at t = 999 at most this


def _schedule(scheduler) -> Text:
    alphas_cumprod = getattr(scheduler, "alphas_cumprod", None)
    if alphas_cumprod is None:
        raise Wrong(Text(en=f"this is a {type(scheduler).__name__}, not a scheduler: pass a DDPMScheduler(...).",
                         zh=f"这是一个 {type(scheduler).__name__}，不是调度器：请传入 DDPMScheduler(...)。"))
    if len(alphas_cumprod) != 1000:
        raise Wrong(Text(en=f"it has {len(alphas_cumprod)} steps; keep num_train_timesteps=1000 to compare schedules.",
                         zh=f"它有 {len(alphas_cumprod)} 步；请保持 num_train_timesteps=1000，才能比较不同的调度。"))
    signal = alphas_cumprod.double().sqrt()
    middle, end = signal[500].item(), signal[999].item()
    if middle < SIGNAL_AT_500:
        raise Wrong(Text(
            en=f"at t = 500 only {middle:.2f} of the image is left (sqrt(alpha_bar)); it must be at least "
               f"{SIGNAL_AT_500}: the picture drowns too early, so let the betas grow more slowly at first.",
            zh=f"在 t = 500 时图像只剩 {middle:.2f}（sqrt(alpha_bar)），至少要 {SIGNAL_AT_500}：图像被噪声淹没得太早，"
               f"请让 beta 在开始时增长得更慢。"))
    if end > SIGNAL_AT_END:
        raise Wrong(Text(
            en=f"at t = 999 there is still {end:.2f} of the image; it must be at most {SIGNAL_AT_END}: sampling starts "
               f"from pure noise, so training must end in almost pure noise too.",
            zh=f"在 t = 999 时图像还剩 {end:.2f}，最多只能是 {SIGNAL_AT_END}：采样从纯噪声开始，所以训练的最后一步也必须几乎是纯噪声。"))
    return Text(en=f"that works: sqrt(alpha_bar) is {middle:.2f} at t = 500 and {end:.3f} at t = 999.",
                zh=f"可以了：t = 500 时 sqrt(alpha_bar) 为 {middle:.2f}，t = 999 时为 {end:.3f}。")


schedule = Exercise(
    "schedule", _schedule,
    hint=Text(
        en="With linear betas the image fades too early or never drowns: try the other `beta_schedule` "
           "values of `DDPMScheduler` (the plots above show one of them).",
        zh="线性 beta 要么让图像消失得太早，要么永远淹没不了它：试试 `DDPMScheduler` 的其他 `beta_schedule` 取值"
           "（上面的图里画了其中一种）。"),
    solution=Text(
        en='```python\nmy_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")\n```\n'
           "The cosine schedule keeps sqrt(alpha_bar) at 0.70 at t = 500 and ends in pure noise; "
           "`beta_schedule=\"sigmoid\"` works too.",
        zh='```python\nmy_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")\n```\n'
           "余弦调度在 t = 500 时 sqrt(alpha_bar) 仍为 0.70，最后是纯噪声；`beta_schedule=\"sigmoid\"` 也可以。"),
)

# ---------------------------------------------------------------------------------------------
# add_noise by hand (section "add_noise").


def _reference_mixes(alphas_cumprod: torch.Tensor, x0, noise, t):
    """The right answer and the usual wrong ones, by name."""
    def mix(signal, noise_weight):
        return signal.view(-1, 1, 1, 1) * x0 + noise_weight.view(-1, 1, 1, 1) * noise

    a = alphas_cumprod[t]
    a_before = alphas_cumprod[(t - 1).clamp(min=0)]
    betas = 1 - alphas_cumprod / torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    alpha = (1 - betas)[t]
    return {
        "right": mix(a.sqrt(), (1 - a).sqrt()),
        "no_sqrt": mix(a, 1 - a),
        "swapped": mix((1 - a).sqrt(), a.sqrt()),
        "off_by_one": mix(a_before.sqrt(), (1 - a_before).sqrt()),
        "one_step_alpha": mix(alpha.sqrt(), (1 - alpha).sqrt()),
        "signal_only": mix(a.sqrt(), torch.zeros_like(a)),
        "x0_only": x0.clone(),
        "noise_only": noise.clone(),
    }


_ADD_NOISE_WRONG = {
    "x0_only": Text(en="it returns x0 unchanged: add the noise, weighted by sqrt(1 - alpha_bar_t), and weight x0 by "
                       "sqrt(alpha_bar_t).",
                    zh="它原样返回了 x0：还要加上权重为 sqrt(1 - alpha_bar_t) 的噪声，并给 x0 乘上 sqrt(alpha_bar_t)。"),
    "signal_only": Text(en="it returns only the image part, sqrt(alpha_bar_t) * x0: add the noise too, weighted by "
                            "sqrt(1 - alpha_bar_t).",
                         zh="它只返回了图像部分 sqrt(alpha_bar_t) * x0：还要加上权重为 sqrt(1 - alpha_bar_t) 的噪声。"),
    "noise_only": Text(en="it returns the noise alone: x_t still holds sqrt(alpha_bar_t) of the image x0.",
                       zh="它只返回了噪声：x_t 里还应含有 sqrt(alpha_bar_t) 倍的图像 x0。"),
    "no_sqrt": Text(en="the weights are alpha_bar and 1 - alpha_bar; they must be their square roots, so that the "
                       "variances add up to 1.",
                    zh="权重用成了 alpha_bar 和 1 - alpha_bar；应该是它们的平方根，这样方差之和才是 1。"),
    "swapped": Text(en="the two weights are swapped: x0 gets sqrt(alpha_bar_t), the noise sqrt(1 - alpha_bar_t).",
                    zh="两个权重对调了：x0 的权重是 sqrt(alpha_bar_t)，噪声的权重是 sqrt(1 - alpha_bar_t)。"),
    "off_by_one": Text(en="it uses alphas_cumprod[t - 1]: diffusers counts from 0, so alphas_cumprod[t] is already the "
                          "alpha_bar of timestep t.",
                       zh="它用了 alphas_cumprod[t - 1]：diffusers 从 0 开始计数，alphas_cumprod[t] 就是时间步 t 的 alpha_bar。"),
    "one_step_alpha": Text(en="it uses alpha_t = 1 - beta_t of a single step; x_t comes from x0 through all t steps, so "
                              "use their product, alphas_cumprod[t].",
                           zh="它用的是单步的 alpha_t = 1 - beta_t；x_t 是从 x0 经过全部 t 步得到的，"
                              "所以要用它们的乘积 alphas_cumprod[t]。"),
}


def _add_noise(fn, scheduler) -> Text:
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
    noise = torch.randn(4, 3, 8, 8, generator=generator)
    t = torch.tensor([0, 10, 500, 999])
    expected = scheduler.add_noise(x0, noise, t)
    answer = fn(x0.clone(), noise.clone(), t)
    if not isinstance(answer, torch.Tensor):
        raise Wrong(Text(en=f"it returned {type(answer).__name__}; return the noisy batch x_t as a tensor.",
                         zh=f"它返回的是 {type(answer).__name__}；请返回含噪批次 x_t（一个张量）。"))
    if answer.shape != expected.shape:
        raise Wrong(Text(en=f"it returned shape {tuple(answer.shape)}; x_t has the shape of x0, {tuple(expected.shape)} "
                            f"(view alpha_bar as (-1, 1, 1, 1) to get one value per image).",
                         zh=f"它返回的形状是 {tuple(answer.shape)}；x_t 的形状应与 x0 相同，即 {tuple(expected.shape)}"
                            f"（把 alpha_bar 变形为 (-1, 1, 1, 1)，每张图像一个值）。"))
    answer = answer.detach().float().cpu()
    if torch.allclose(answer, expected, atol=1e-5):
        return Text(en="that works: the same x_t as noise_scheduler.add_noise, at t = 0, 10, 500 and 999.",
                    zh="可以了：在 t = 0、10、500 和 999 时与 noise_scheduler.add_noise 给出的 x_t 相同。")
    for name, candidate in _reference_mixes(scheduler.alphas_cumprod.float(), x0, noise, t).items():
        if name != "right" and torch.allclose(answer, candidate, atol=1e-5):
            raise Wrong(_ADD_NOISE_WRONG[name])
    worst = (answer - expected).abs().flatten(1).amax(1)
    where = int(t[worst.argmax()])
    raise Wrong(Text(en=f"x_t differs from noise_scheduler.add_noise, most at t = {where} (by {worst.max():.3f}): "
                        f"compute sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise.",
                     zh=f"x_t 与 noise_scheduler.add_noise 的结果不同，在 t = {where} 时差得最多（{worst.max():.3f}）："
                        f"请计算 sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise。"))


add_noise = Exercise(
    "add_noise", _add_noise,
    hint=Text(en="The formula above the cell: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, with "
                 "`alpha_bar` already holding one alpha_bar_t per image.",
              zh="公式就在单元格上方：x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise，"
                 "其中 `alpha_bar` 已经为每张图像存好了一个 alpha_bar_t。"),
    solution=Text(
        en="```python\ndef my_add_noise(x0, noise, t):\n"
           "    alpha_bar = noise_scheduler.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)\n"
           "    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise\n```",
        zh="```python\ndef my_add_noise(x0, noise, t):\n"
           "    alpha_bar = noise_scheduler.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)\n"
           "    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise\n```"),
)

# ---------------------------------------------------------------------------------------------
# A UNet without attention ("Exercises", item 2).


def _attention_places(model) -> list[str]:
    from diffusers.models.attention_processor import Attention

    places = []
    for i, block in enumerate(getattr(model, "down_blocks", [])):
        if any(isinstance(m, Attention) for m in block.modules()):
            places.append(f"down block {i} ({type(block).__name__})")
    mid = getattr(model, "mid_block", None)
    if mid is not None and any(isinstance(m, Attention) for m in mid.modules()):
        places.append("the middle block")
    for i, block in enumerate(getattr(model, "up_blocks", [])):
        if any(isinstance(m, Attention) for m in block.modules()):
            places.append(f"up block {i} ({type(block).__name__})")
    return places


def _no_attention(model) -> Text:
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "down_blocks"):
        raise Wrong(Text(en=f"this is a {type(model).__name__}; pass the UNet2DModel you built.",
                         zh=f"这是一个 {type(model).__name__}；请传入你构建的 UNet2DModel。"))
    places = _attention_places(model)
    if places == ["the middle block"]:
        raise Wrong(Text(en="the down and up blocks are attention-free, but the middle block still has self-attention: "
                            "add add_attention=False.",
                         zh="下行和上行块已经没有注意力了，但中间块仍有自注意力：请加上 add_attention=False。"))
    if places:
        first = places[0]
        zh_first = first.replace("down block", "下行块").replace("up block", "上行块").replace("the middle block", "中间块")
        raise Wrong(Text(en=f"{first} still has attention (and {len(places) - 1} more place(s)): use DownBlock2D and "
                            f"UpBlock2D in the block types, and add_attention=False for the middle block.",
                         zh=f"{zh_first} 仍有注意力（另外还有 {len(places) - 1} 处）：块类型请用 DownBlock2D 和 UpBlock2D，"
                            f"中间块用 add_attention=False。"))
    size = config.sample_size if isinstance(config.sample_size, int) else config.sample_size[0]
    x = torch.zeros(1, config.in_channels, size, size, device=next(model.parameters()).device)
    with torch.no_grad():
        out = model(x, torch.tensor([10], device=x.device)).sample
    if out.shape != x.shape:
        raise Wrong(Text(en=f"it runs, but returns shape {tuple(out.shape)} for an input of {tuple(x.shape)}.",
                         zh=f"它能运行，但输入形状为 {tuple(x.shape)} 时返回的形状是 {tuple(out.shape)}。"))
    params = sum(p.numel() for p in model.parameters())
    return Text(en=f"that works: no attention anywhere, {params:,} parameters, and it keeps the shape of its input.",
                zh=f"可以了：任何地方都没有注意力，共 {params:,} 个参数，输出形状与输入相同。")


no_attention = Exercise(
    "no_attention", _no_attention,
    hint=Text(en="Three places have attention: the Attn... entries of `down_block_types` and `up_block_types`, and "
                 "the middle block, which has it unless you pass `add_attention=False`.",
              zh="有三处带注意力：`down_block_types` 和 `up_block_types` 里的 Attn... 项，以及中间块"
                 "（除非传入 `add_attention=False`，它默认带注意力）。"),
    solution=Text(
        en="```python\nsmall_kwargs = cu.unet_config(preset, down_block_types=(\"DownBlock2D\",) * 4,\n"
           "                             up_block_types=(\"UpBlock2D\",) * 4, add_attention=False)\n"
           "small_model = UNet2DModel(**small_kwargs)\n```",
        zh="```python\nsmall_kwargs = cu.unet_config(preset, down_block_types=(\"DownBlock2D\",) * 4,\n"
           "                             up_block_types=(\"UpBlock2D\",) * 4, add_attention=False)\n"
           "small_model = UNet2DModel(**small_kwargs)\n```"),
)

__all__ = ["add_noise", "no_attention", "schedule"]
