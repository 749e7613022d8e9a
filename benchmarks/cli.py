"""The ``sdn-bench`` command line. Commands are thin: each calls an importable function."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

try:
    __version__ = version("sdn-bench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"


def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sdn-bench")
def main():
    """sdn-bench: train Set Distribution Networks and score them as the paper does."""


@main.group()
def data():
    """Generate synthetic datasets in the real on-disk layouts, and preview them."""


@data.command("shapes")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root to write (or resume).",
)
@click.option("--categories", default=None, help="Comma-separated synset ids or names (default: all 13).")
@click.option("--objects-per-category", default=50, show_default=True, type=int)
@click.option("--views", default=24, show_default=True, type=int, help="Rendered views per object.")
@click.option("--resolution", default=64, show_default=True, type=int, help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Processes.")
def data_shapes(out, categories, objects_per_category, views, resolution, seed, workers):
    """Write a synthetic mini-ShapeNet in the Occupancy Networks layout."""
    from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes

    cfg = ShapesConfig(
        objects_per_category=objects_per_category, views=views, resolution=resolution, seed=seed
    )
    if categories:
        cfg.categories = _csv_list(categories)
    try:
        run = generate_shapes(out, cfg, workers=workers)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(
        f"{out}: {run['objects_generated']} objects generated, {run['objects_skipped']} already there, "
        f"{run['wall_s']:.1f} s ({run['objects_per_minute'] or 0:.1f} objects/min)"
    )


@data.command("preview")
@click.option("--data", "root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--split", default="train", show_default=True)
@click.option("--per-category", default=6, show_default=True, type=int)
def data_preview(root, out, split, per_category):
    """Write a PNG grid: a few objects per category and several views of one object."""
    from sdn.data.preview import shapes_grid

    try:
        click.echo(shapes_grid(root, out, split=split, per_category=per_category))
    except ValueError as e:
        raise click.UsageError(str(e)) from e


@main.command("bench")
@click.option(
    "--data",
    "root",
    default="data/shapes-default",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option("--out", default="reports/latest", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", default=2, show_default=True, type=int)
def bench(root, out, workers):
    """The main job on the embedded synthetic default (what `make bench` runs)."""
    from benchmarks.main_job import run_bench

    run_bench(root, out, workers=workers, echo=click.echo)


if __name__ == "__main__":
    main()
