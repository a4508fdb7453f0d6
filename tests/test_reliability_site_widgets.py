"""Probes D28, D29, D31 and D37 (the tools' usage lines) of the reliability review: the site's pages and the widgets given bad input.

Each test reproduces the probe: a README title that closes <title> and opens a script (D28), a slider
caption that opens an HTML comment inside the script payload (D29), and widgets given NaN images,
channel-last images, a model without weights or a model that outputs NaN (D31).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import DDPMScheduler

import course_utils as cu
from course_utils.widget_view import FrameWidget
from tools import book, book_widgets


def test_d28_the_root_page_escapes_the_readme_title():
    page = book.redirect_page('# Unit 1 </title><script>window.__xss=1</script> & "quotes"\n\ntext\n')
    assert "<script>" not in page and "&lt;/title&gt;&lt;script&gt;" in page
    assert page.count("<title>") == 1 and page.count("</title>") == 1


def test_d29_a_caption_that_opens_an_html_comment_cannot_break_the_slider():
    frames = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    widget = FrameWidget({"x": frames}, ["t = 0 <!--<script>", "t = 1"], [0, 1], description="t")
    page = book_widgets.book_html(widget)
    assert "<!--" not in page  # an HTML parser would swallow the rest of the page into a comment
    payload = re.search(r'<script[^>]*class="cu-slider-data"[^>]*>(.*?)</script>', page, re.S).group(1)
    assert "t = 0 <!--<script>" in json.dumps(json.loads(payload), ensure_ascii=False)  # the caption itself survives


@pytest.mark.parametrize("bad, words", [
    (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
    (torch.rand(2, 8, 8, 3) * 2 - 1, "permute(0, 3, 1, 2)"),
    (torch.rand(2, 5, 8, 8) * 2 - 1, "1 or 3 channels"),
])
def test_d31_bad_images_are_one_line_errors(bad, words):
    with pytest.raises(ValueError, match=None) as error:
        cu.forward_process_widget(DDPMScheduler(num_train_timesteps=100), bad)
    assert words in str(error.value) and "\n" not in str(error.value)


class NoWeights(torch.nn.Module):
    def forward(self, x, t=None):
        return x


class NaNOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t=None):
        return x * float("nan")


def test_d31_a_model_without_weights_asks_for_the_device():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="pass device="):
        cu.corruption_widget(lambda x, amount: x, NoWeights(), x)
    assert isinstance(cu.corruption_widget(lambda x, amount: x, NoWeights(), x, device="cpu", num_frames=2), FrameWidget)


def test_d31_a_model_that_outputs_nan_is_named_not_drawn_black():
    with pytest.raises(ValueError, match="NaN"):
        cu.model_view_widget(NaNOut(), DDPMScheduler(num_train_timesteps=100), torch.rand(2, 1, 8, 8) * 2 - 1, num_frames=2)


@pytest.mark.parametrize("tool", ["book", "cn_sync", "export_lesson_code", "readme_figures"])
def test_d37_a_tool_s_usage_says_how_to_run_it(tool):
    """`usage: book.py` told nobody how to run the tool; each says `python -m tools.NAME`."""
    result = subprocess.run([sys.executable, "-m", f"tools.{tool}", "--help"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert result.returncode == 0 and result.stdout.startswith(f"usage: python -m tools.{tool} ")
