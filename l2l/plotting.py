"""Figures: one style, image grids and ``save_figure`` (PNG + PDF under figures/<scale>/)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # headless default; notebooks may still display inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from l2l.io import atomic_write, figures_dir, tables_seen, versions, write_json  # noqa: E402


def set_style() -> None:
    """Small, print-friendly defaults shared by every figure."""
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 9,
                         "axes.titlesize": 9, "pdf.fonttype": 42})


def image_grid(images: np.ndarray, *, row_labels: list[str], col_labels: list[str] | None = None,
               cell: float = 0.9) -> plt.Figure:
    """A grid of images.

    Args:
        images: uint8 [rows, cols, H, W, 3] (or float in [0, 1]).
        row_labels: one label per row, drawn on the left.
        col_labels: optional titles of the top row.
    """
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + 1.2, rows * cell),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[r, c], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
            if r == 0 and col_labels:
                ax.set_title(col_labels[c])
    return fig


def save_figure(fig: plt.Figure, name: str, scale: str) -> list[Path]:
    """Write ``figures/<scale>/<name>.png`` and ``.pdf`` and the sidecar ``<name>.json``, which
    names the tables of ``results/<scale>/`` this process saved or read before drawing, with
    their sha256 (``io.tables_seen``): the figure says which tables it was drawn with, and a
    table rewritten later no longer matches. Returns the png and pdf paths."""
    out = figures_dir(scale)
    paths = []
    for ext in ("png", "pdf"):
        # PDFs embed a creation date unless told not to: keep reruns byte-stable.
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        paths.append(atomic_write(out / f"{name}.{ext}",
                             lambda p, e=ext, m=meta: fig.savefig(p, format=e, bbox_inches="tight",
                                                                   metadata=m)))
    write_json(out / f"{name}.json", {
        "figure": [p.name for p in paths], "scale": scale, "versions": versions(),
        "drawn_with_tables": tables_seen(scale),
        "note": "tables of results/<scale>/ saved or read by the process before drawing"})
    return paths


def completion_grid(panels: dict[str, np.ndarray], row_names: list[str]) -> plt.Figure:
    """Stack per-subset panels (uint8 [rows, n, 3, S, S]) into one labelled image grid.

    Row labels read "<subset>: <row name>", e.g. "forget: unlearned".
    """
    blocks, labels = [], []
    for subset, panel in panels.items():
        arr = np.asarray(panel)
        if arr.shape[0] != len(row_names):
            raise ValueError(f"{subset} panel has {arr.shape[0]} rows, expected {len(row_names)}")
        blocks.append(arr.transpose(0, 1, 3, 4, 2))  # -> [rows, n, S, S, 3]
        labels += [f"{subset}: {r}" for r in row_names]
    return image_grid(np.concatenate(blocks), row_labels=labels)


def method_grid(panels: dict[str, np.ndarray], col_names: list[str], *,
                cell: float = 0.75) -> plt.Figure:
    """The paper's qualitative layout: one column per panel row (ground truth, masked input,
    each model), one image row per (panel, image).

    Args:
        panels: label -> uint8 [len(col_names), n, 3, S, S] (``completion_panels`` output).
        col_names: column titles.
    """
    rows, labels = [], []
    for label, panel in panels.items():
        arr = np.asarray(panel)
        if arr.shape[0] != len(col_names):
            raise ValueError(f"{label} panel has {arr.shape[0]} rows, expected {len(col_names)}")
        arr = arr.transpose(1, 0, 3, 4, 2)  # -> [n, columns, S, S, 3]
        rows.append(arr)
        labels += [label] + [""] * (len(arr) - 1)
    titles = [c.replace(" ", "\n", 1) if len(c) > 8 else c for c in col_names]  # narrow columns
    return image_grid(np.concatenate(rows), row_labels=labels, col_labels=titles, cell=cell)


# Li et al.'s T-SNE markers and colours (Fig. 4; released tsne.py / tsne_visual.py): squares for
# model outputs, x for ground truth; red / blue = unlearned forget / retain, green / orange =
# ground truth.
TSNE_STYLE = {"unlearned, forget": ("s", "tab:red"), "unlearned, retain": ("s", "tab:blue"),
              "ground truth, forget": ("x", "tab:green"), "ground truth, retain": ("x", "#ED7D31")}


def tsne_axes(ax: plt.Axes, points, title: str, *, size: float = 28) -> None:
    """One T-SNE panel of ``points`` (columns x, y, group) in Li et al.'s style."""
    for group, (marker, colour) in TSNE_STYLE.items():
        p = points[points["group"] == group]
        ax.scatter(p["x"], p["y"], marker=marker, c=colour, s=size, label=group,
                   linewidths=1.2 if marker == "x" else 0.3, edgecolors="none" if marker == "x"
                   else "k")
    ax.set(xticks=[], yticks=[], title=title)


def tradeoff_axes(ax: plt.Axes, rows, title: str, *, label: str = "method") -> None:
    """Forget vs retain hole FID, one point per ``label`` with +-1 sigma bars (rows: label,
    forget, forget_err, retain, retain_err). Up-left is better for Li et al."""
    for r in rows.itertuples():
        ax.errorbar(r.retain, r.forget, xerr=r.retain_err, yerr=r.forget_err, fmt="o", ms=4,
                    capsize=2, label=getattr(r, label))
    ax.set(xlabel="retain hole FID (lower: kept)", ylabel="forget hole FID (higher: forgotten)",
           title=title)


def method_schematic(ax: plt.Axes, objects: dict) -> None:
    """Li et al. Fig. 2 drawn from the objects of a run (``p1_figures.method_objects``):
    D_F and D_R into the trainable encoder E_theta, the noise input and D_R into the frozen copy
    E_theta0, the frozen decoder D, and the two loss terms."""
    def box(x, y, text, colour):
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "0.3"})

    def arrow(a, b):
        ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "color": "0.3"})

    shapes = " + ".join("x".join(map(str, s)) for s in objects["embedding_shapes"][:2])
    more = " ..." if len(objects["embedding_shapes"]) > 2 else ""
    img = "x".join(map(str, objects["image_shape"]))
    box(0.1, 0.82, f"D_F forget\nT(x_f) {img}", "#f4cccc")
    box(0.1, 0.5, f"D_R retain\nT(x_r) {img}", "#cfe2f3")
    box(0.1, 0.15, "noise n ~ N(0, Σ)\nT(n) " + "x".join(map(str, objects["noise_shape"])),
        "#eeeeee")
    box(0.42, 0.66, f"E_θ (trainable)\n{objects['encoder_params']:,} params", "#fff2cc")
    box(0.42, 0.15, f"E_θ0 (frozen copy)\n{objects['encoder_params']:,} params", "#d9d9d9")
    box(0.82, 0.82, f"D (frozen)\n{objects['decoder_params']:,} params\nembedding {shapes}{more}",
        "#d9d9d9")
    box(0.8, 0.36, "L_F = ||E_θ(T(x_f)) − E_θ0(T(n))||²\n"
        "L_R = ||E_θ(T(x_r)) − E_θ0(T(x_r))||²\n"
        f"L = L_R + α L_F,  α = {objects['alpha']:g}", "#ffffff")
    for a, b in (((0.19, 0.8), (0.32, 0.69)), ((0.19, 0.52), (0.32, 0.63)),
                 ((0.21, 0.15), (0.32, 0.15)), ((0.19, 0.46), (0.36, 0.21)),
                 ((0.53, 0.68), (0.7, 0.78)),
                 ((0.47, 0.6), (0.62, 0.42)), ((0.5, 0.2), (0.62, 0.3))):
        arrow(a, b)
    ax.set(xlim=(0, 1), ylim=(0, 1), title=f"Li et al. Eq. 10 on the {objects['family']} "
           f"({objects['steps']} steps)")
    ax.axis("off")


def pipeline_schematic(ax: plt.Axes, objects: dict) -> None:
    """Varshney & Torra's two stages and the audit, drawn from one ``varshney2025`` run:
    ``objects`` has family, lam, lambda_source, stage1_steps, reached, ga_lr, ga_check_every,
    ft_steps, ft_lr, ft_hinge (``p2_figures.pipeline_objects``)."""
    def box(x, y, text, colour):
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "0.3"})

    def arrow(a, b):
        ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "color": "0.3"})

    o = objects
    box(0.1, 0.5, "original h0\n(trained on\nD_f ∪ D_r)", "#d9d9d9")
    box(0.37, 0.72, f"Stage 1: decoupling\nSGD ascent on L(h; D_f)\nlr {o['ga_lr']:g}, check d "
        f"every {o['ga_check_every']}\nstop at d ≥ λ: {o['stage1_steps']} steps"
        f"{'' if o['reached'] else ' (cap)'}", "#f4cccc")
    box(0.37, 0.22, f"λ = {o['lam']:.3g}\n{o['lambda_source']}", "#eeeeee")
    box(0.66, 0.72, f"Stage 2: retention\nAdam on L(h; D_r), lr {o['ft_lr']:g}\n"
        f"{o['ft_steps']} steps, keep-OOD hinge {o['ft_hinge']:g}", "#cfe2f3")
    box(0.9, 0.45, "audit\nd, BSR, MIA,\ngap to retrain", "#fff2cc")
    for a, b in (((0.17, 0.56), (0.25, 0.68)), ((0.37, 0.3), (0.37, 0.6)),
                 ((0.5, 0.72), (0.53, 0.72)), ((0.78, 0.66), (0.86, 0.53))):
        arrow(a, b)
    ax.text(0.37, 0.02, "d(h) = mean hole MSE between h0 and h on a fixed forget probe",
            ha="center", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1), title=f"Varshney & Torra on the {o['family']}")
    ax.axis("off")


def claims_chart(claims) -> plt.Figure:
    """Pass / fail of every claim row (``claim_id`` "P1-a[family]"): claims down, families
    across, green = passed, red = failed, the measured value written in the cell."""
    ids = claims["claim_id"].str.extract(r"^([^\[]+)(?:\[(.*)\])?$")
    names, groups = list(dict.fromkeys(ids[0])), list(dict.fromkeys(ids[1].fillna("")))
    fig, ax = plt.subplots(figsize=(3.2 * len(groups) + 1, 0.55 * len(names) + 0.8))
    for (name, group), passed, value in zip(ids.itertuples(index=False, name=None),
                                            claims["passed"], claims["value"]):
        x, y = groups.index(group if isinstance(group, str) else ""), names.index(name)
        ax.add_patch(plt.Rectangle((x, y), 1, 1, fc="#b6d7a8" if passed else "#ea9999", ec="w"))
        ax.text(x + 0.5, y + 0.5, str(value), ha="center", va="center", fontsize=6, wrap=True)
    ax.set(xlim=(0, len(groups)), ylim=(len(names), 0), xticks=[i + 0.5 for i in range(len(groups))],
           yticks=[i + 0.5 for i in range(len(names))])
    ax.set_xticklabels(groups), ax.set_yticklabels(names)
    ax.tick_params(length=0)
    return fig
