"""course_utils.diagrams: the UNet2DModel diagram of notebook 01 is read from the model's config,
and what it says (blocks, channels, sizes, attention, skip connections) is what diffusers builds."""
import matplotlib
import pytest
import torch

import course_utils as cu
from course_utils.diagrams import draw_unet, unet_layout

matplotlib.use("Agg")


@pytest.mark.parametrize("preset", ["butterflies", "butterflies-cpu", "mnist"])
def test_layout_is_what_diffusers_builds(preset):
    model = cu.make_unet(preset)
    layout = unet_layout(cu.unet_config(preset))
    assert layout == unet_layout(model) == unet_layout(model.config)  # a dict of arguments, a model, its config
    sizes = {}

    def record(name):
        def hook(module, args, kwargs):
            sizes[name] = (args[0] if args else kwargs["hidden_states"]).shape[-1]
        return hook

    hooks = [block.register_forward_pre_hook(record(name), with_kwargs=True)
             for name, block in [*((f"down{i}", b) for i, b in enumerate(model.down_blocks)), ("mid", model.mid_block),
                                 *((f"up{i}", b) for i, b in enumerate(model.up_blocks))]]
    size = layout["size"]
    with torch.no_grad():
        model(torch.zeros(1, layout["in_channels"], size, size), 10)
    for hook in hooks:
        hook.remove()
    for i, (b, block) in enumerate(zip(layout["down"], model.down_blocks)):
        assert b["resnets"] == len(block.resnets) and b["c_out"] == block.resnets[-1].out_channels
        assert b["c_in"] == block.resnets[0].in_channels and b["size"] == sizes[f"down{i}"]
        assert b["attention"] == bool(getattr(block, "attentions", None))
        assert b["resample"] == (block.downsamplers is not None)
    assert layout["mid"]["attention"] and len(model.mid_block.attentions) == 1 and layout["mid"]["size"] == sizes["mid"]
    for j, (b, block) in enumerate(zip(layout["up"], model.up_blocks)):
        assert b["resnets"] == len(block.resnets) == len(b["skips"]) and b["size"] == sizes[f"up{j}"]
        assert b["attention"] == bool(getattr(block, "attentions", None))
        assert b["resample"] == (block.upsamplers is not None)
        previous = b["c_in"]
        for resnet, skip in zip(block.resnets, b["skips"]):  # each ResNet layer concatenates one skip
            assert resnet.conv1.in_channels == previous + skip
            previous = resnet.conv1.out_channels
        assert previous == b["c_out"]
    assert layout["norm_num_groups"] == model.conv_norm_out.num_groups
    assert layout["time_embed_dim"] == model.time_embedding.linear_2.out_features


def test_the_cpu_model_has_16_groups_of_2_channels_at_32_channels():
    """Notebook 01: norm_num_groups counts groups (diffusers' default is 32), not channels per group."""
    model = cu.make_unet("butterflies-cpu")
    first = model.down_blocks[0].resnets[0].norm1
    assert (first.num_groups, first.num_channels) == (16, 32)
    assert cu.make_unet("butterflies").down_blocks[0].resnets[0].norm1.num_groups == 32


def test_diagram_shows_the_config():
    fig = draw_unet(cu.unet_config("butterflies-cpu"))
    texts = "\n".join(t.get_text() for t in fig.axes[0].texts) + fig.axes[0].get_title()
    for piece in ("AttnDownBlock2D", "AttnUpBlock2D", "64 -> 128 ch, 4x4", "64 -> 32 ch, 32x32",
                  "GroupNorm with 16 groups", "8 skip connections", "2 ResNet layers + attention", "downsample to 16x16",
                  "upsample to 32x32", "ResNet, attention, ResNet", "noisy image $x_t$: 3 x 32 x 32"):
        assert piece in texts, piece
    big = draw_unet(cu.make_unet("butterflies"))
    title = big.axes[0].get_title()
    assert "12 skip connections" in title and "GroupNorm with 32 groups" in title
    matplotlib.pyplot.close("all")


def test_bad_input_says_what_to_pass():
    with pytest.raises(TypeError, match="UNet2DModel, its .config, or a dict"):
        draw_unet("butterflies")
    with pytest.raises(ValueError, match="knows the blocks"):
        unet_layout(cu.unet_config("butterflies", down_block_types=("SkipDownBlock2D",) * 4))
