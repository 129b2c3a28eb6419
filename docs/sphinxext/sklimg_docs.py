"""Sphinx extension for sklimg's docs: the backbone table, API pages, gallery order.

``.. backbone-table::`` renders the backbone registry as it is when the docs are built,
so the table can never disagree with ``sklimg.backbones``: one row per name in
:func:`sklimg.backbones.list_backbones`, read from its :class:`~sklimg.backbones.BackboneSpec`.
"""

from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# Gallery pages in reading order; examples not listed follow, by file name.
GALLERY_ORDER = (
    "plot_quickstart.py",
    "plot_three_routes.py",
    "plot_preprocessing_pipeline.py",
    "plot_augmentation.py",
    "plot_backbones.py",
)


class ExampleOrder:
    """sphinx-gallery ``within_subsection_order`` key: :data:`GALLERY_ORDER`, then names."""

    def __init__(self, src_dir: str) -> None:
        """sphinx-gallery passes the gallery folder; the order does not depend on it."""

    def __call__(self, filename: str) -> tuple[int, str]:
        if filename in GALLERY_ORDER:
            return GALLERY_ORDER.index(filename), filename
        return len(GALLERY_ORDER), filename


def _size(size) -> str:
    return f"{size[0]} x {size[1]}"


def _weights(spec) -> str:
    """The pretrained weights, and for torchvision's the file cached under TORCH_HOME."""
    if spec.pretrained_weights is None:
        return "--"
    if spec.torchvision_name is None:
        return spec.pretrained_weights
    from torchvision.models import get_model_weights, get_weight

    name = spec.pretrained_weights
    weights = get_weight(name) if "." in name else get_model_weights(spec.torchvision_name)[name]
    return f"``{type(weights).__name__}.{weights.name}``, file ``{os.path.basename(weights.url)}``"


def _from_scratch(spec) -> str:
    """The input size ``input_size="auto"`` gives a network trained from scratch."""
    if spec.kind == "classical":
        return "-- (features are computed, not learned)"
    text = "own size"
    if spec.min_input_size != (1, 1):
        text += f", at least {_size(spec.min_input_size)}"
    if spec.small_input_below is not None:
        text += f"; small-image stem below {spec.small_input_below} px"
    return text


class BackboneTable(SphinxDirective):
    """``.. backbone-table::``: every registered backbone, one row each."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from sklimg import backbones, features
        from sklimg.backbones import get_backbone, list_backbones

        # Rebuild the page when a backbone module changes (the classical ones are
        # registered by sklimg.features).
        for module in Path(backbones.__file__).parent.glob("*.py"):
            self.env.note_dependency(str(module))
        self.env.note_dependency(str(Path(features.__file__).parent / "_backbones.py"))

        header = [
            "Name",
            "Features",
            "Pretrained input",
            "Pretrained weights",
            "Trained from scratch",
            "Description",
        ]
        rows = []
        for name in list_backbones():
            spec = get_backbone(name)
            has_weights = spec.pretrained_weights is not None
            rows.append(
                [
                    f"``{name}``",
                    "--" if spec.feature_dim is None else str(spec.feature_dim),
                    _size(spec.input_size) if has_weights and spec.input_size else "--",
                    _weights(spec),
                    _from_scratch(spec),
                    spec.description or "--",
                ]
            )
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: auto", ""]
        for row in [header, *rows]:
            lines.append(f"   * - {row[0]}")
            lines += [f"     - {cell}" for cell in row[1:]]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="backbone-table"), 0, container)
        return container.children


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Document on sklimg's pages only what sklimg implements.

    Methods inherited from scikit-learn (``score``, ``get_params``, ``set_output``,
    ``set_fit_request``, ...), torch or ``Exception`` are documented by those projects;
    their docstrings also cite labels of their own docs, which do not resolve here.
    """
    defined_in = getattr(getattr(obj, "fget", obj), "__module__", None)
    if isinstance(defined_in, str) and not defined_in.startswith("sklimg"):
        return True
    return None


def setup(app):
    app.add_directive("backbone-table", BackboneTable)
    app.connect("autodoc-skip-member", _skip_foreign_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
