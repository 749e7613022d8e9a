"""The ``sdn-bench`` command line. Commands are thin: each calls an importable function."""

from __future__ import annotations

import functools
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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
@click.option(
    "--splits",
    default="train,val,test",
    show_default=True,
    help="Comma-separated splits whose objects to write (the .lst files are always complete); "
    "rerun with more to add the rest.",
)
def data_shapes(out, categories, objects_per_category, views, resolution, seed, workers, splits):
    """Write a synthetic mini-ShapeNet in the Occupancy Networks layout."""
    from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes

    cfg = ShapesConfig(
        objects_per_category=objects_per_category, views=views, resolution=resolution, seed=seed
    )
    if categories:
        cfg.categories = _csv_list(categories)
    try:
        run = generate_shapes(out, cfg, workers=workers, splits=tuple(_csv_list(splits)))
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(
        f"{out}: {run['objects_generated']} objects generated, {run['objects_skipped']} already there, "
        f"{run['wall_s']:.1f} s ({run['objects_per_minute'] or 0:.1f} objects/min)"
    )


@data.command("faces")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root to write (or resume).",
)
@click.option("--identities", default=500, show_default=True, type=int)
@click.option("--images-per-identity", default=24, show_default=True, type=int)
@click.option("--resolution", default=64, show_default=True, type=int, help="Image side in pixels.")
@click.option("--test-fraction", default=0.2, show_default=True, type=float, help="Identities held out.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Processes.")
@click.option(
    "--splits",
    default="train,test",
    show_default=True,
    help="Comma-separated splits whose identities to render (the list, meta and box files are "
    "always complete); rerun with more to add the rest.",
)
def data_faces(out, identities, images_per_identity, resolution, test_fraction, seed, workers, splits):
    """Write synthetic identities in the VGGFace2 layout (train/test identities disjoint)."""
    from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces

    cfg = FacesConfig(
        identities=identities,
        images_per_identity=images_per_identity,
        resolution=resolution,
        test_fraction=test_fraction,
        seed=seed,
    )
    try:
        run = generate_faces(out, cfg, workers=workers, splits=tuple(_csv_list(splits)))
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(
        f"{out}: {run['identities_generated']} identities generated, {run['identities_skipped']} already "
        f"there, {run['wall_s']:.1f} s ({run['images_per_second'] or 0:.1f} images/s)"
    )


@data.command("preview")
@click.option("--data", "root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--split", default="train", show_default=True)
@click.option(
    "--per-category", default=6, show_default=True, type=int, help="Objects per category, or identities."
)
@click.option("--per-identity", default=8, show_default=True, type=int, help="Images per identity (faces).")
def data_preview(root, out, split, per_category, per_identity):
    """Write a PNG grid: for an OccNet-layout root, a few objects per category and several
    views of one object; for a VGGFace2-layout root (it has SPLIT_list.txt), a few
    identities with several images each."""
    from sdn.data.preview import faces_grid, shapes_grid

    try:
        if (Path(root) / f"{split}_list.txt").is_file():
            path = faces_grid(root, out, split=split, identities=per_category, per_identity=per_identity)
        else:
            path = shapes_grid(root, out, split=split, per_category=per_category)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(path)


@main.group()
def train():
    """Train models: the SDN (and, later, the OccNet and the face verifier)."""


def _run_options(command):
    """The options every trainer but the SDN's shares (``--steps`` ... ``--cache-dir``)."""
    for option in reversed(
        [
            click.option("--steps", type=int, default=None),
            click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None),
            click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
            click.option(
                "--set",
                "overrides",
                multiple=True,
                metavar="SECTION.KEY=VALUE",
                help="Override any config field.",
            ),
            click.option("--out", required=True, type=click.Path(file_okay=False)),
            click.option("--resume", is_flag=True),
            click.option("--cache-dir", type=click.Path(file_okay=False), default=None),
        ]
    ):
        command = option(command)
    return command


def _run_config(cfg, overrides, **train):
    """``cfg`` with ``train.<key>=<value>`` for each given (not None) value, then ``overrides``."""
    from sdn.config import apply_overrides

    extra = [f"train.{k}={v}" for k, v in train.items() if v is not None]
    return apply_overrides(cfg, extra + list(overrides))


@train.command("sdn")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Dataset root.")
@click.option(
    "--dataset",
    default="shapes",
    show_default=True,
    type=click.Choice(["shapes", "faces"]),
    help="shapes: an OccNet-layout root; faces: a VGGFace2-layout root.",
)
@click.option(
    "--preset",
    "preset_name",
    default="cpu-32",
    show_default=True,
    type=click.Choice(["paper-128", "gpu-64", "cpu-32", "tiny-16"]),
)
@click.option(
    "--recipe",
    default="faithful",
    show_default=True,
    type=click.Choice(["faithful", "aided"]),
    help="faithful = the paper exactly; aided = the aids chosen by the CPU ablation.",
)
@click.option("--steps", type=int, default=None, help="Total steps (default: the preset's).")
@click.option("--batch-sets", type=int, default=None, help="Sets per minibatch per process.")
@click.option("--set-size", type=int, default=8, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None, help="Default: bf16.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=None)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override any config field, e.g. --set aids.ema=0.999 --set train.eval_sets=32.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None, help="Decoded-image cache folder."
)
@click.option(
    "--selection", "with_selection", is_flag=True,
    help="Also score the benchmark, reduced, on validation data at evaluations (benchmarks/selection.py: "
    "shapes Table 1(a) IoU on 39 val objects, faces AUC on the held-out train identities, each "
    "normalised by the ladder) into eval.csv and selection.png.",
)  # fmt: skip
@click.option("--selection-every", type=int, default=0, help="Steps between selection scores (0: each eval).")
@click.option("--selection-occnet", default=None, help="OccNet of the shapes score (default: shipped).")
@click.option("--selection-embedder", default=None, help="Verifier of the faces score (default: shipped).")
@click.option(
    "--init-from", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Start a new run from these exported weights (same config and data; optimisers restart; "
    "recorded in run.json).",
)  # fmt: skip
def train_sdn_cmd(
    data,
    dataset,
    preset_name,
    recipe,
    steps,
    batch_sets,
    set_size,
    precision,
    device,
    seed,
    overrides,
    out,
    resume,
    cache_dir,
    with_selection,
    selection_every,
    selection_occnet,
    selection_embedder,
    init_from,
):
    """Train a Set Distribution Network (one ψ step, then one θ step, per minibatch)."""
    from sdn.config import preset
    from sdn.trainer import train_sdn

    try:
        cfg = _run_config(
            preset(preset_name, dataset, recipe), overrides, set_size=set_size, steps=steps,
            batch_sets=batch_sets, precision=precision, seed=seed,
        )  # fmt: skip
        selection = None
        if with_selection:
            from benchmarks.selection import selection_for

            selection = selection_for(
                dataset, data, cfg.train, selection_occnet, selection_embedder, cache_dir
            )
        record = train_sdn(
            data, cfg, out, dataset=dataset, resume=resume, device=device, cache_dir=cache_dir,
            selection=selection, selection_every=selection_every, init_from=init_from,
        )  # fmt: skip
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if record is not None and "last_eval" in record:
        ev = record["last_eval"]
        click.echo(
            f"step {ev['step']}: code agreement {ev['code_agree_own']:.3f} vs {ev['code_agree_other']:.3f} "
            f"(corrected {ev['code_agree_corrected']:+.3f}); "
            f"retrieval colour {ev['retrieval_colour_histogram']:.3f}, "
            f"mean image {ev['retrieval_mean_image']:.3f} (chance {ev['retrieval_chance']:.3f}); "
            f"{int(ev['distinct_codes'])} distinct codes"
        )


@train.command("occnet")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset root (OccNet layout).",
)
@click.option(
    "--preset",
    "preset_name",
    default="cpu-32",
    show_default=True,
    type=click.Choice(["paper", "cpu-32", "cpu-64", "tiny"]),
)
@click.option(
    "--views-per-sample", type=int, default=None, help="K random views per object per step (codes pooled)."
)
@click.option(
    "--held-out", "held_out", multiple=True, type=click.Path(exists=True, file_okay=False),
    help="A dataset whose val/test objects the training split must not hold (repeatable; checked by "
    "the generator's parameters, e.g. the benchmark's data when training on a larger set).",
)  # fmt: skip
@_run_options
def train_occnet_cmd(
    data, preset_name, views_per_sample, held_out, steps, precision, device, overrides, out, resume, cache_dir
):
    """Train the multi-view Occupancy Network (keeps best.pt by validation IoU)."""
    from occnet_multiview.config import occnet_preset
    from occnet_multiview.trainer import train_occnet

    try:
        cfg = _run_config(
            occnet_preset(preset_name),
            overrides,
            views_per_sample=views_per_sample,
            steps=steps,
            precision=precision,
        )
        record = train_occnet(
            data, cfg, out, resume=resume, device=device, cache_dir=cache_dir, held_out=held_out
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if "best" in record:
        b = record["best"]
        click.echo(
            f"best validation IoU {b['best_iou']:.3f} at threshold {b['best_threshold']:g} (step {b['step']})"
        )


@train.command("verifier")
@click.option(
    "--data", required=True, type=click.Path(exists=True, file_okay=False), help="VGGFace2-layout root."
)
@click.option(
    "--preset",
    "preset_name",
    default="cpu-64",
    show_default=True,
    type=click.Choice(["cpu-64", "gpu-112", "tiny"]),
)
@_run_options
def train_verifier_cmd(data, preset_name, steps, precision, device, overrides, out, resume, cache_dir):
    """Train the project's face verifier on the train identities (keeps best.pt by the
    verification AUC of held-out train identities; reports test-identity AUC and TPR)."""
    from evaluation.verifier import verifier_preset
    from evaluation.verifier_trainer import train_verifier

    try:
        cfg = _run_config(verifier_preset(preset_name), overrides, steps=steps, precision=precision)
        record = train_verifier(data, cfg, out, resume=resume, device=device, cache_dir=cache_dir)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if "best" in record:
        click.echo(f"best: {json.dumps(record['best'])}")


def _numbers(value: str, name: str, kind=int) -> tuple:
    """A comma-separated list of ``kind`` (int or float), or a BadParameter naming ``name``."""
    try:
        return tuple(kind(v) for v in _csv_list(value))
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise click.BadParameter(f"expected comma-separated {what}, got {value!r}", param_hint=name) from None


def references_option(command):
    """``--references``: score the calibration ladder beside the model (:mod:`benchmarks.ladder`)."""
    return click.option(
        "--references", "with_references", is_flag=True,
        help="Also score the reference models (ref:oracle, floors, ...) into OUT/references and write "
        "OUT/calibration.csv|md with normalised scores (reference reports are cached).",
    )(command)  # fmt: skip


def distribution_options(command):
    """The novelty / realism section's options (:mod:`benchmarks.distribution`), handed to the
    command as one ``distribution`` argument: a dict of config fields."""
    options = [
        click.option(
            "--no-distribution", is_flag=True, help="Skip the novelty / coverage / realism section."
        ),
        click.option(
            "--train-split", default="train", show_default=True,
            help="The split the model was trained on: the memorisation test's training sets.",
        ),
        click.option("--knn-k", default=5, show_default=True, type=int, help="k of the k-NN figures."),
        click.option(
            "--fid-weights", type=click.Path(dir_okay=False), default=None,
            help="A local inception-2015-12-05.pt (TorchScript) for the standard FID; never downloaded.",
        ),
    ]  # fmt: skip

    @functools.wraps(command)
    def collect(*args, no_distribution, train_split, knn_k, fid_weights, **kwargs):
        kwargs["distribution"] = {"distribution": not no_distribution, "train_split": train_split,
                                  "knn_k": knn_k, "fid_weights": fid_weights}  # fmt: skip
        return command(*args, **kwargs)

    for option in reversed(options):
        collect = option(collect)
    return collect


def model_options(command):
    """``--model SPEC`` (with ``--ckpt`` as an alias for an SDN checkpoint) and repeated
    ``--model-arg key=value``: the set model a benchmark scores (:mod:`benchmarks.models`)."""
    command = click.option(
        "--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
        help="An argument of a python: factory (repeatable; passed as a string).",
    )(command)  # fmt: skip
    command = click.option(
        "--ckpt", default=None, type=click.Path(exists=True, dir_okay=False),
        help="An SDN checkpoint (the same as --model PATH).",
    )(command)  # fmt: skip
    return click.option(
        "--model", "model", default=None, metavar="SPEC",
        help="The set model: an SDN checkpoint path, python:package.module:factory, ref:NAME "
        "(oracle, copy, same-category, other-category, other-identity) or folder:DIR.",
    )(command)  # fmt: skip


def _model(ckpt, model, model_args) -> tuple[str, dict]:
    """The model spec and factory arguments of :func:`model_options`, or a usage error."""
    from benchmarks.models import model_spec_from, parse_model_args

    try:
        return model_spec_from(ckpt, model), parse_model_args(model_args)
    except ValueError as e:
        raise click.UsageError(str(e)) from e


def _occnet_path(ctx, param, value) -> str:
    from benchmarks.shipped import OCCNET, resolve_checkpoint

    try:
        path = resolve_checkpoint(value, OCCNET)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--occnet") from None
    if not Path(path).is_file():
        raise click.BadParameter(f"no OccNet checkpoint at {value!r}", param_hint="--occnet")
    return path


def occnet_option(command):
    """``--occnet``: an OccNet checkpoint, by default the shipped reference (:mod:`benchmarks.shipped`)."""
    return click.option(
        "--occnet", default=None, callback=_occnet_path, metavar="PATH",
        help="OccNet checkpoint (default: the shipped reference OccNet, occnet-shapes-cpu32.pt).",
    )(command)  # fmt: skip


def _embedder_source(ctx, param, value) -> str:
    from benchmarks.shipped import VERIFIER, resolve_checkpoint

    if value in ("facenet-vggface2", "facenet-casia"):
        return value
    try:
        return resolve_checkpoint(value, VERIFIER)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--embedder") from None


@main.command("shapenet")
@model_options
@occnet_option
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True)
@click.option("--recon-views", default="1,4,8,16", show_default=True)
@click.option("--input-views", default="1,4,8,16", show_default=True)
@click.option(
    "--max-objects", type=int, default=None, help="Objects spread evenly over the split (default: all)."
)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--threshold", type=float, default=None, help="Default: the OccNet checkpoint's validated threshold."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None,
    help="Cache folder: decoded images, the real side in its shapenet-real subfolder and reference "
    "reports in references (default ~/.cache/sdn-bench/{images,shapenet-real,references}).",
)  # fmt: skip
@click.option(
    "--no-cache", is_flag=True,
    help="Recompute the real side (M, Table 2, gt_real) and every reference; store nothing.",
)
@click.option(
    "--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16"]),
    help="The OccNet's precision (bf16: autocast, as it trains; faster on AMX-bf16 CPUs).",
)  # fmt: skip
@click.option("--free-sets", type=int, default=None, help="Free sets per prior (default: one per object).")
@distribution_options
@references_option
def shapenet(
    model,
    ckpt,
    model_args,
    occnet,
    data,
    split,
    recon_views,
    input_views,
    max_objects,
    workers,
    seed,
    threshold,
    out,
    cache_dir,
    no_cache,
    precision,
    free_sets,
    with_references,
    distribution,
):
    """Table 1(a), Table 1(b) and Table 2: meshes from real and reconstructed view-sets, and the
    novelty / coverage / realism of free samples."""
    import sys

    from benchmarks.shapenet import ShapeNetBenchConfig, run_calibrated_shapenet

    spec, args = _model(ckpt, model, model_args)
    recon, inputs = _numbers(recon_views, "--recon-views"), _numbers(input_views, "--input-views")
    cfg = ShapeNetBenchConfig(split=split, recon_views=recon, input_views=inputs, max_objects=max_objects)
    cfg.workers, cfg.seed, cfg.threshold, cfg.precision = workers, seed, threshold, precision
    cfg.free_sets = free_sets
    for name, value in distribution.items():
        setattr(cfg, name, value)
    try:
        manifest = run_calibrated_shapenet(
            spec, occnet, data, out, cfg, with_references, cache_dir, not no_cache, " ".join(sys.argv), args,
            echo=click.echo,
        )  # fmt: skip
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if manifest:  # under torchrun only rank 0 writes the report
        n, wall = manifest["data"]["objects"], manifest["wall_s"]
        click.echo(f"{out}: {n} objects in {wall:.0f} s; see tables.md")


@main.command("faces")
@model_options
@click.option(
    "--data", required=True, type=click.Path(exists=True, file_okay=False), help="VGGFace2-layout root."
)
@click.option(
    "--embedder", default=None, callback=_embedder_source,
    help="facenet-vggface2, facenet-casia, or a verifier checkpoint (default: the shipped verifier, "
    "verifier-faces64.pt).",
)  # fmt: skip
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="facenet weights file (default: $TORCH_HOME/checkpoints/<official name>).",
)
@click.option("--split", default="test", show_default=True)
@click.option("--set-size", default=8, show_default=True, type=int)
@click.option("--noise-levels", default="0,0.1,0.25,0.5", show_default=True)
@click.option("--context-sizes", default="1,4,8,16", show_default=True)
@click.option("--num-free-sets", type=int, default=None, help="Sets per prior (default: one per identity).")
@click.option(
    "--max-identities", type=int, default=None, help="Identities spread over the split (default: all)."
)
@click.option(
    "--crop", type=click.Choice(["loose_bb", "mtcnn", "none"]), default="loose_bb", show_default=True
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None,
    help="Cache folder: decoded images, and cached reference reports in its references subfolder.",
)  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Score every reference afresh; store none.")
@distribution_options
@references_option
def faces(
    model, ckpt, model_args, data, embedder, weights, split, set_size, noise_levels, context_sizes,
    num_free_sets, max_identities, crop, seed, out, cache_dir, no_cache, with_references, distribution,
):  # fmt: skip
    """Figure 8(a)-(c): verification ROC of real, reconstructed and sampled face sets, and the
    novelty / coverage / realism of free samples."""
    import sys

    from benchmarks.faces import FacesBenchConfig, run_calibrated_faces

    spec, args = _model(ckpt, model, model_args)
    cfg = FacesBenchConfig(
        split=split, set_size=set_size, noise_levels=_numbers(noise_levels, "--noise-levels", float),
        context_sizes=_numbers(context_sizes, "--context-sizes"), num_free_sets=num_free_sets,
        max_identities=max_identities, crop=crop, seed=seed, **distribution,
    )  # fmt: skip
    try:
        manifest = run_calibrated_faces(
            spec, data, out, cfg, embedder, weights, with_references, cache_dir, not no_cache,
            " ".join(sys.argv), args, echo=click.echo,
        )  # fmt: skip
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if manifest:  # under torchrun only rank 0 writes the report
        n, wall = manifest["data"]["identities"], manifest["wall_s"]
        click.echo(f"{out}: {n} identities in {wall:.0f} s; see summary.md")


def _tasks_written(out, doc: dict, resolution: int) -> None:
    samples = sum(count for count, _ in doc["sample"].values())
    click.echo(
        f"{out}: {doc['reconstruct']} reconstruction and {samples} sample tasks at {resolution} px; "
        f"write {out}/<task_id>/000.png ... and score them with --model folder:{out}"
    )


@main.group("tasks")
def tasks():
    """Write every request a benchmark will make of a set model (folder:DIR scores the answers)."""


@tasks.command("shapenet")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@occnet_option
@click.option("--split", default="test", show_default=True)
@click.option("--recon-views", default="1,4,8,16", show_default=True)
@click.option("--input-views", default="1,4,8,16", show_default=True)
@click.option("--max-objects", type=int, default=None, help="As the benchmark's (default: all).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Tasks folder.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
def tasks_shapenet(data, occnet, split, recon_views, input_views, max_objects, seed, out, cache_dir):
    """The ShapeNet benchmark's requests: score the answers with `sdn-bench shapenet --model folder:OUT`
    and the same options."""
    from benchmarks.shapenet import ShapeNetBenchConfig
    from benchmarks.tasks import shapenet_tasks
    from occnet_multiview.model import OccupancyNetwork

    recon, inputs = _numbers(recon_views, "--recon-views"), _numbers(input_views, "--input-views")
    cfg = ShapeNetBenchConfig(
        split=split, recon_views=recon, input_views=inputs, max_objects=max_objects, seed=seed
    )
    try:
        resolution = OccupancyNetwork.from_checkpoint(occnet).resolution
        doc = shapenet_tasks(data, resolution, cfg, out, cache_dir)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    _tasks_written(out, doc, resolution)


@tasks.command("faces")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--resolution", default=32, show_default=True, type=int, help="The model's image size.")
@click.option("--split", default="test", show_default=True)
@click.option("--set-size", default=8, show_default=True, type=int)
@click.option("--context-sizes", default="1,4,8,16", show_default=True)
@click.option("--num-free-sets", type=int, default=None, help="Sets per prior (default: one per identity).")
@click.option("--max-identities", type=int, default=None)
@click.option(
    "--crop", type=click.Choice(["loose_bb", "mtcnn", "none"]), default="loose_bb", show_default=True
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Tasks folder.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
def tasks_faces(
    data,
    resolution,
    split,
    set_size,
    context_sizes,
    num_free_sets,
    max_identities,
    crop,
    seed,
    out,
    cache_dir,
):
    """The faces benchmark's requests: score the answers with `sdn-bench faces --model folder:OUT` and
    the same options."""
    from benchmarks.faces import FacesBenchConfig
    from benchmarks.tasks import faces_tasks

    cfg = FacesBenchConfig(
        split=split, set_size=set_size, context_sizes=_numbers(context_sizes, "--context-sizes"),
        num_free_sets=num_free_sets, max_identities=max_identities, crop=crop, seed=seed,
    )  # fmt: skip
    try:
        doc = faces_tasks(data, resolution, cfg, out, cache_dir)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    _tasks_written(out, doc, resolution)


@main.command("validate")
@click.option("--ckpt", required=True, type=click.Path(exists=True, dir_okay=False), help="SDN checkpoint.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Its dataset.")
@click.option("--dataset", type=click.Choice(["shapes", "faces"]), default="shapes", show_default=True)
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False))
def validate(ckpt, data, dataset, cache_dir):
    """Held-out figures of an SDN checkpoint on the validation sets its training run
    evaluates on (shapes: val.lst; faces: held-out train identities), never the test
    split. Prints them as JSON."""
    from sdn.trainer import validation_quality

    click.echo(json.dumps(validation_quality(ckpt, data, dataset, cache_dir=cache_dir), indent=2))


@main.command("export")
@click.option(
    "--ckpt", required=True, type=click.Path(exists=True, dir_okay=False), help="A training checkpoint."
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="Weights-only checkpoint to write."
)
@click.option("--fp32", is_flag=True, help="Keep float32 weights (default: float16).")
@click.option("--note", default="", help="Free text stored in the manifest (e.g. the training command).")
def export(ckpt, out, fp32, note):
    """Export a weights-only checkpoint (fp16 by default) with a manifest beside it."""
    from benchmarks.manifest import export_with_manifest

    try:
        manifest = export_with_manifest(ckpt, out, half=not fp32, note=note)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(f"{out}: {manifest['size_mb']:.2f} MB, sha256 {manifest['sha256'][:16]}…")


@main.command("bench")
@click.option(
    "--data",
    "root",
    default="data/shapes-default",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Synthetic mini-ShapeNet root (generated or reused).",
)
@click.option(
    "--faces-data",
    "faces_root",
    default="data/faces-default",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Synthetic VGGFace2-layout root (generated or reused).",
)
@click.option("--out", default="reports/latest", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", default=2, show_default=True, type=int)
@click.option(
    "--max-objects", default=None, type=int, help="Test objects scored (default: 39, three per category)."
)
@click.option(
    "--references/--no-references", default=True, show_default=True,
    help="Score the calibration ladder beside each reference SDN (cached after the first run).",
)  # fmt: skip
def bench(root, faces_root, out, workers, max_objects, references):
    """The main job on the embedded synthetic defaults (what `make bench` runs): the test
    splits of both datasets, both benchmarks with the reference checkpoints, one index."""
    from benchmarks.main_job import run_bench

    try:
        run_bench(root, faces_root, out, workers, max_objects, references, echo=click.echo)
    except ValueError as e:
        raise click.UsageError(str(e)) from e


@main.command("compare")
@click.argument("current", type=click.Path(exists=True, file_okay=False))
@click.argument("baseline", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--tolerances",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML or JSON: {metric or glob: {direction: higher|lower, abs: X | rel: Y}} over the defaults.",
)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: CURRENT/compare.")
@click.option(
    "--aggregate-only",
    is_flag=True,
    help="Verdicts only from aggregate rows (category 'mean of categories' where a file has a category"
    " column); the other rows are shown as context.",
)
def compare(current, baseline, tolerances, out, aggregate_only):
    """Compare two reports of one benchmark. Exit 0: no regression; 1: a metric regressed
    (moved the wrong way beyond its tolerance with disjoint CIs); 2: not comparable (different
    data, subset or settings). Rows whose interval does not exist get no verdict ("n too small")."""
    from benchmarks.compare import compare_main

    raise SystemExit(compare_main(current, baseline, tolerances, out, aggregate_only))


@main.command("regress")
@click.option(
    "--work",
    default="runs/regression",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Scratch folder (emptied first).",
)
@click.option(
    "--refresh-baseline",
    is_flag=True,
    help="Replace benchmarks/baselines/{shapes,faces} with this run's reports.",
)
@click.option(
    "--rebuild-fixtures",
    is_flag=True,
    help="Regenerate the tiny data and retrain the tiny models under benchmarks/baselines/fixtures "
    "(on purpose only), then stop.",
)
@click.option(
    "--only", type=click.Choice(["shapes", "faces"]), default=None, help="Run one benchmark of the job."
)
def regress(work, refresh_baseline, rebuild_fixtures, only):
    """The CI regression job: committed tiny models scored on committed tiny data, both
    benchmarks, compared with the committed baselines (aggregate rows). Exit 0: nothing
    regressed; 1: a metric regressed; 2: not comparable."""
    from benchmarks.regression import BENCHMARKS, build_fixtures, run_regression

    if rebuild_fixtures:
        build_fixtures(work, echo=click.echo)
        raise SystemExit(0)
    benchmarks = (only,) if only else BENCHMARKS
    raise SystemExit(run_regression(work, refresh_baseline, echo=click.echo, benchmarks=benchmarks))


if __name__ == "__main__":
    main()
