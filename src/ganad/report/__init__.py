"""Figures and a self-contained HTML report of detection results.

Plots are built on an Agg canvas (no display needed) and returned as matplotlib Figures;
:func:`write_report` embeds them as base64 PNGs in one HTML file that opens offline.
"""

from ganad.report.html import write_report
from ganad.report.plots import (
    examples_figure,
    fig_to_base64_png,
    image_map_figure,
    pr_figure,
    roc_figure,
    roc_pr_figure,
    sample_figure,
    sample_kind,
    save_png,
    score_distribution_figure,
    series_map_figure,
    training_curves_figure,
    vector_map_figure,
)

__all__ = [
    "write_report",
    "roc_pr_figure",
    "roc_figure",
    "pr_figure",
    "score_distribution_figure",
    "training_curves_figure",
    "series_map_figure",
    "image_map_figure",
    "vector_map_figure",
    "sample_figure",
    "sample_kind",
    "examples_figure",
    "save_png",
    "fig_to_base64_png",
]
