"""The report a reader opens: one static HTML page per scale and tier that starts with the claims ledger, each claim
linking to the tables, figures and picture grids behind it, followed by those tables (rendered from their Markdown)
and figures (PNGs linked relatively, each with its caption and protocol). Nothing loads from the network. An inline
script records script errors, images that failed to load and empty sections into the page itself
(`<pre id="page-check">`), so a headless browser's `--dump-dom` shows whether a reader would see everything.
"""

from __future__ import annotations

import fnmatch
import html
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.figures import caption_path
from benchmarks.ledger_page import number
from tunebench.config import ConfigError

# Which tables and figures (by file stem, shell patterns) hold the evidence of each claim; `{rest}` is the claim id
# after its first two parts (DEFT-1-inpaint → inpaint). The report links every existing artefact that matches.
EVIDENCE = {
    "DT-1": ("difftune_main", "difftune_seeds", "samples_*"),
    "DT-2": ("forgetting", "forgetting_splice"),
    "DT-3": ("ablation_retention_set",),
    "DT-4": ("difftune_peft",),
    "DT-5": ("controlnet", "controlnet_*"),
    "DEFT-1": ("deft_main", "deft_paired", "deft_{rest}"),
    "DEFT-2": ("deft_main", "deft_protocol"),
    "DEFT-3": ("deft_main",),
    "DEFT-4": ("protein_motif", "protein_motif_quality", "protein_scaffolds", "protein_picks"),
}
# How a picture was made, in the order a reader asks: which model, which seeds and labels, which sampler, how many
# steps, which guidance, from which commit.
PROTOCOL_ORDER = ("model", "seeds", "labels", "sampler", "steps", "guidance", "commit")
VERDICT_CLASSES = {"reproduced": "ok", "not reproduced": "bad", "inconclusive": "open", "not measured": "none"}

# Records what a reader would miss, before any image loads: script errors (window 'error' events, which for an
# image are its failed load), console.error calls, images with no pixels and sections with neither table nor image.
CHECK_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    errors.push(e.message || ('failed to load ' + ((e.target && (e.target.src || e.target.href)) || 'a resource')));
  }, true);
  var consoleError = console.error;
  console.error = function () { errors.push([].join.call(arguments, ' ')); consoleError.apply(console, arguments); };
  window.addEventListener('load', function () {
    var missing = [].filter.call(document.images, function (img) { return !img.complete || img.naturalWidth === 0; })
      .map(function (img) { return img.getAttribute('src'); });
    var empty = [].filter.call(document.querySelectorAll('section'), function (s) {
      return !s.querySelector('img, table');
    }).map(function (s) { return s.id; });
    var out = document.getElementById('page-check');
    out.textContent = JSON.stringify({errors: errors, missing_images: missing, empty_sections: empty});
    out.setAttribute('data-done', 'yes');
  });
})();
"""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
th { background: #f2f2f2; }
.ok { color: #116611; } .bad { color: #aa1111; } .open { color: #8a5a00; } .none { color: #777; }
.caption, .note { font-size: 12px; color: #444; max-width: 1100px; }
.protocol { font-family: monospace; font-size: 11px; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
section { margin: 1.5em 0; padding-top: 0.5em; border-top: 1px solid #ddd; }
"""


@dataclass(frozen=True)
class Figure:
    """A PNG shown on the page: its path, caption and protocol (from its sidecar or a caption file)."""

    path: Path
    caption: str
    protocol: dict


def evidence_patterns(claim_id: str) -> tuple[str, ...]:
    """The artefact-stem patterns of a claim (EVIDENCE), `{rest}` filled with the id after its first two parts."""
    parts = claim_id.split("-", 2)
    key, rest = "-".join(parts[:2]), parts[2] if len(parts) > 2 else ""
    return tuple(pattern.format(rest=rest) for pattern in EVIDENCE.get(key, ()))


def evidence_links(claim_id: str, stems: dict[str, str]) -> list[tuple[str, str]]:
    """(anchor, stem) of every table or figure behind a claim, in EVIDENCE's order; `stems` maps stem → anchor."""
    links = []
    for pattern in evidence_patterns(claim_id):
        links += [(stems[stem], stem) for stem in sorted(stems) if fnmatch.fnmatchcase(stem, pattern)
                  and (stems[stem], stem) not in links]
    return links


def inline(text: str) -> str:
    """Escaped text with Markdown's **bold**, `code` and footnote marks [^n] as HTML."""
    text = html.escape(str(text))
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\[\^(\w+)\]:?", r"<sup>\1</sup>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_table_html(markdown: str) -> str:
    """A table file of `benchmarks.tables` (a pipe table, footnotes `[^n]: …`, an italic caption) as HTML."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    if len(rows) < 3:
        raise ConfigError("a table file needs a header, a rule and at least one row of Markdown pipe-table lines")

    def cells(line: str) -> list[str]:
        """The cells of one pipe-table line (escaped pipes kept inside their cell)."""
        return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    out = ["<table>", "<tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells(rows[0])) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells(line)) + "</tr>" for line in rows[2:]]
    out.append("</table>")
    for line in markdown.splitlines():
        line = line.strip()
        if line.startswith("[^"):
            out.append(f'<p class="note">{inline(line)}</p>')
        elif line.startswith("*") and line.endswith("*") and not line.startswith("**"):
            out.append(f'<p class="caption">{inline(line.strip("*"))}</p>')
    return "\n".join(out)


def protocol_text(protocol: dict) -> str:
    """`key=value; …` of a picture's protocol: PROTOCOL_ORDER's keys first (sidecars are written with sorted keys)."""
    keys = [key for key in PROTOCOL_ORDER if key in protocol] + sorted(set(protocol) - set(PROTOCOL_ORDER))
    return "; ".join(f"{key}={protocol[key]}" for key in keys)


def claims_html(rows: list[dict], anchors: dict[str, str]) -> str:
    """The ledger: claim, statement with how it was judged, the paper's number, ours with its interval, the
    verdict and links to the evidence on this page."""
    out = ["<table>", "<tr><th>Claim</th><th>Paper says</th><th>Paper</th><th>Ours [95% CI]</th><th>Verdict</th>"
                      "<th>Evidence</th></tr>"]
    for row in rows:
        ours = number(row["value"])
        if not (isinstance(row["ci_low"], float) and math.isnan(row["ci_low"])):
            ours += f" [{number(row['ci_low'])}, {number(row['ci_high'])}]"
        links = evidence_links(row["claim_id"], anchors)
        evidence = ", ".join(f'<a href="#{anchor}">{html.escape(stem)}</a>' for anchor, stem in links) or "–"
        verdict = row["verdict"]
        out.append(f'<tr id="claim-{html.escape(row["claim_id"])}"><td>{html.escape(row["claim_id"])}</td>'
                   f'<td>{inline(row["statement"])}<br><span class="note">{inline(row["detail"])}</span></td>'
                   f'<td>{number(row["paper_value"])}</td><td>{ours}</td>'
                   f'<td class="{VERDICT_CLASSES.get(verdict, "")}"><strong>{html.escape(verdict)}</strong></td>'
                   f"<td>{evidence}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def figure_html(figure: Figure, page_dir: Path) -> str:
    """A figure: the image (linked relative to the page), its caption and its protocol line."""
    src = Path(os.path.relpath(figure.path, page_dir)).as_posix()
    parts = [f'<a href="{html.escape(src)}"><img src="{html.escape(src)}" alt="{html.escape(figure.path.stem)}">'
             "</a>"]
    if figure.caption:
        parts.append(f'<p class="caption">{inline(figure.caption)}</p>')
    if figure.protocol:
        parts.append(f'<p class="protocol">{html.escape(protocol_text(figure.protocol))}</p>')
    return "\n".join(parts)


def section(anchor: str, title: str, body: str) -> str:
    """One section of the page; an empty body is refused (a reader would see a heading over nothing)."""
    if not body.strip():
        raise ConfigError(f"section {title!r} has nothing to show")
    return f'<section id="{html.escape(anchor)}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'


def report_html(claims: list[dict], tables: list[Path], figures: list[Figure], out: Path, scale: str,
                tier: str) -> str:
    """The page: the ledger first, then every table and every figure, each in a section the ledger links to."""
    anchors = {path.stem: f"table-{path.stem}" for path in tables}
    anchors.update({figure.path.stem: f"figure-{figure.path.stem}" for figure in figures})
    commits = sorted({str(row["git_commit"])[:10] for row in claims if row.get("git_commit")})
    body = [f"<h1>tunebench report: {html.escape(scale)} scale, {html.escape(tier)} tier</h1>",
            f'<p class="note">Ledger judged at commit {html.escape(", ".join(commits) or "unknown")}; every number and '
            "picture below was written by the Snakemake DAG."
            + ("" if scale == "paper" else " Image quality is fid_local (a local feature network), not Inception FID.")
            + "</p>",
            section("claims", "Claims ledger", claims_html(claims, anchors))]
    body += [section(f"table-{path.stem}", f"Table: {path.stem}", markdown_table_html(path.read_text()))
             for path in tables]
    body += [section(f"figure-{figure.path.stem}", f"Figure: {figure.path.stem}", figure_html(figure, out.parent))
             for figure in figures]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>tunebench report ({html.escape(scale)}, {html.escape(tier)})</title>\n"
            f"<style>{STYLE}</style>\n<script>{CHECK_SCRIPT}</script>\n</head>\n<body>\n"
            + "\n".join(body) + '\n<pre id="page-check" hidden></pre>\n</body>\n</html>\n')


def read_figure(item: str) -> Figure:
    """A --figures item: PNG, or PNG=CAPTION_FILE (a text caption, e.g. workflows/report/*.rst). A PNG with a
    caption sidecar (`benchmarks.figures.write_caption`) takes caption and protocol from it."""
    path, _, caption_file = item.partition("=")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if caption_path(path).is_file():
        sidecar = json.loads(caption_path(path).read_text())
        return Figure(path, sidecar["caption"], sidecar["protocol"])
    caption = " ".join(Path(caption_file).read_text().split()) if caption_file else ""
    return Figure(path, caption, {})
