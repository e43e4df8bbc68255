"""The report page as a reader sees it: built from small synthetic results (a ledger, a table, a picture grid with
its protocol sidecar, a figure with a caption file), opened in headless Chromium, which must show every image and
section with no script error; and the check itself must catch a missing image, an empty section and a script error.
"""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import report
from benchmarks.figures import caption_path, plot_image_rows, plot_metric_vs_step, write_caption
from benchmarks.ledger import LEDGER_COLUMNS
from benchmarks.report_page import evidence_links, markdown_table_html, section
from tests.browser import needs_chromium, page_check, screenshot
from tunebench.config import ConfigError

TABLE = """| Method | textures | Average |
| :--- | ---: | ---: |
| full_ft | **21.14**[^1] | 21.14 |
| diff_tuning | 28.52[^1] | 28.52 |

[^1]: local-38e00037 features, reference textures-train-local.npz

*fid_local (lower is better), one seed. Protocol: sampler=ddpm; steps=50; guidance=1.5.*
"""
PROTOCOL = {"model": "runs/smoke/finetune/textures/{full_ft,diff_tuning}/model", "seeds": "0-3", "sampler": "ddpm",
            "steps": 5, "guidance": 1.5, "commit": "0123456789"}


def ledger_row(claim_id: str, verdict: str, value: float) -> dict:
    """One ledger row with every column `benchmarks.ledger` writes."""
    row = dict.fromkeys(LEDGER_COLUMNS, "")
    row.update(claim_id=claim_id, statement=f"statement of {claim_id}", paper_value=float("nan"), value=value,
               ci_low=value - 1, ci_high=value + 1, verdict=verdict, detail="per dataset: textures +7.2",
               git_commit="0123456789abcdef", scale="smoke")
    return row


@pytest.fixture
def report_inputs(tmp_path):
    """Ledger, table, picture grid (with sidecar) and curve figure (with caption file) under tmp_path/results."""
    results = tmp_path / "results/smoke"
    (results / "claims").mkdir(parents=True)
    (results / "tables").mkdir()
    pd.DataFrame([ledger_row("DT-1", "inconclusive", 9.3), ledger_row("DT-2", "reproduced", 1.0),
                  ledger_row("DEFT-1-inpaint", "not reproduced", -0.6)]).to_csv(results / "claims/smoke.csv",
                                                                                index=False)
    (results / "tables/difftune_main.md").write_text(TABLE)
    rng = np.random.default_rng(0)
    grid = results / "figures/samples_textures.png"
    plot_image_rows([(name, rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
                     for name in ("real", "full_ft", "diff_tuning")], grid, column_labels=["seed 0", "1", "2", "3"])
    write_caption(grid, "textures: real training images and each model's samples on seeds 0-3", PROTOCOL)
    curve = results / "figures/forgetting.png"
    plot_metric_vs_step(pd.DataFrame({"step": [0, 1], "method": "full_ft", "metric": "fid_local",
                                      "value": [3.0, 2.0]}), curve)
    (tmp_path / "forgetting.rst").write_text("Chain of forgetting:\nFID against t0.\n")
    return results, [str(grid), f"{curve}={tmp_path / 'forgetting.rst'}"]


def build_page(results, figures) -> str:
    """Run the report CLI's `page` sub-command; the page's path."""
    out = results / "report/smoke.html"
    report.main(["page", "--claims", str(results / "claims/smoke.csv"), "--scale", "smoke", "--tier", "smoke",
                 "--tables", str(results / "tables/difftune_main.md"), "--figures", *figures, "--out", str(out)])
    return out


def test_page_opens_with_the_ledger_and_links_each_claim_to_its_evidence(report_inputs):
    page = build_page(*report_inputs).read_text()
    assert page.index('id="claims"') < page.index('id="table-difftune_main"') < page.index('id="figure-forgetting"')
    dt1 = re.search(r'<tr id="claim-DT-1">.*?</tr>', page).group(0)
    assert 'href="#table-difftune_main"' in dt1 and 'href="#figure-samples_textures"' in dt1
    assert 'href="#figure-forgetting"' in re.search(r'<tr id="claim-DT-2">.*?</tr>', page).group(0)
    assert ">–</td></tr>" in re.search(r'<tr id="claim-DEFT-1-inpaint">.*?</tr>', page).group(0)  # none here
    assert "9.3 [8.3, 10.3]" in dt1 and 'class="open"><strong>inconclusive' in dt1
    assert 'src="../figures/samples_textures.png"' in page  # relative: the folder can be moved or served as is
    assert "sampler=ddpm; steps=5; guidance=1.5; commit=0123456789" in page  # the grid's protocol, from its sidecar
    assert "Chain of forgetting: FID against t0." in page  # the figure's caption file
    assert "<td><strong>21.14</strong><sup>1</sup></td>" in page and "http" not in page  # nothing from the network
    assert '<p class="note"><sup>1</sup> local-38e00037 features' in page  # the footnote under its table


def test_evidence_of_a_task_claim_is_that_tasks_picture():
    anchors = {"deft_main": "table-deft_main", "deft_inpaint": "figure-deft_inpaint", "deft_sr4": "figure-deft_sr4"}
    assert evidence_links("DEFT-1-inpaint", anchors) == [("table-deft_main", "deft_main"),
                                                         ("figure-deft_inpaint", "deft_inpaint")]
    assert evidence_links("DT-5", anchors) == []


def test_bad_inputs_are_refused(report_inputs, tmp_path):
    with pytest.raises(ConfigError, match="nothing to show"):
        section("x", "Empty", "  ")
    with pytest.raises(ConfigError, match="pipe-table"):
        markdown_table_html("no table here\n")
    with pytest.raises(ConfigError, match="same seeds"):
        plot_image_rows([("a", np.zeros((2, 4, 4, 3), np.uint8)), ("b", np.zeros((3, 4, 4, 3), np.uint8))],
                        tmp_path / "x.png")
    results, figures = report_inputs
    with pytest.raises(FileNotFoundError, match="absent.png"):
        build_page(results, [*figures, str(tmp_path / "absent.png")])


def test_picture_grid_rows_may_differ_in_resolution(tmp_path):
    out = tmp_path / "grid.png"
    plot_image_rows([("truth", np.full((3, 16, 16, 1), 200, np.uint8)), ("y", np.zeros((3, 4, 4, 3), np.uint8))],
                    out, title="t")
    write_caption(out, "c", {"seeds": "0-2"})
    pixels = np.asarray(Image.open(out).convert("L"))
    grey, black = (pixels == 200).sum(), (pixels == 0).sum()
    assert grey > 1000 and black == pytest.approx(grey, rel=0.15)  # a 4-pixel image fills as large a cell as a 16
    assert json.loads(caption_path(out).read_text()) == {"caption": "c", "protocol": {"seeds": "0-2"}}


@needs_chromium
def test_chromium_shows_every_image_and_section_without_errors(report_inputs, tmp_path):
    page = build_page(*report_inputs)
    assert page_check(page) == {"errors": [], "missing_images": [], "empty_sections": []}
    shot = tmp_path / "shot.png"
    screenshot(page, shot, 1280, 1600)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (1600, 1280) and pixels.std() > 10  # the page drew something, not a blank window


@needs_chromium
def test_chromium_check_catches_a_missing_image_an_empty_section_and_a_script_error(report_inputs):
    results, figures = report_inputs
    page = build_page(results, figures)
    (results / "figures/forgetting.png").unlink()
    assert page_check(page)["missing_images"] == ["../figures/forgetting.png"]
    text = page.read_text()
    table = re.search(r"<table>.*?</table>", text[text.index('id="table-difftune_main"'):], re.S).group(0)
    page.write_text(text.replace(table, "").replace("</body>", "<script>undefinedFunction();</script></body>"))
    check = page_check(page)
    assert check["empty_sections"] == ["table-difftune_main"]
    assert any("undefinedFunction" in error for error in check["errors"])
