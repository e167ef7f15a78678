"""The ``recogan`` command: a thin caller of the library, for batch jobs.

Exit codes: 0 success, 2 bad input or usage (one message on stderr, no traceback), 3 export
refused by validation (the failing features on stderr), 1 internal error (a bug: the traceback is
printed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from recogan_app import __version__
from recogan_app.config import DEVICES, MODELS, SEED_MAX, ZDC_MODELS, ZDC_PROFILES
from recogan_app.errors import ExportRefused, InputError
from recogan_app.metrics.verdict import REQUIRABLE

EXAMPLES = """examples:
  recogan data toy-xic --out xic.parquet                 # the embedded Ξc+ toy, 531,548 candidates
  recogan train --data xic.parquet --out runs/xic --time-limit 300
  recogan train --data mc.root --tree Candidates --features pt,decay_length,cos_pa --out runs/a
  recogan train --data "mc/*.root" --data extra.root --cut "pt > 2 and abs(eta) < 0.8" --out runs/b
  recogan train --data mc.root --weights EventWeight --out runs/w   # weighted MC: the weights are never modelled
  recogan train --data dimuon.csv --derive "pt1 = hypot(px1, py1)" --out runs/mumu   # pt1 computed, not modelled
  recogan train --data xic.parquet --out runs/xic-flow --model flow --time-limit 300
  recogan train --data xic.parquet --out runs/xic-auto --model auto --time-limit 300   # the family a short trial picks
  recogan train --resume runs/a                          # continue a killed training from its last epoch
  recogan generate --run runs/xic --n 10000000 --out synthetic.parquet --seed 1
  recogan validate --run runs/xic --report report.html      # against the run's held-out split
  recogan export --run runs/xic --n 86000000 --out xic.root --require good --seed 1
  recogan data toy-zdc --n 20000 --out zdc.npz           # the embedded proton-ZDC toy (seed 001)
  recogan train --kind zdc --data zdc.npz --out runs/zdc --time-limit 300
  recogan generate --run runs/zdc --conditions zdc.npz --out zdc-generated.npz --seed 1
  recogan scan --data xic.parquet --grid lambda_ks=0.5,1 --repeats 3 --out scans/ks   # on Dask
  recogan ensemble --data xic.parquet --members 10 --out ensembles/xic   # error bars and N_eff
  recogan serve --data-root ~/mc --port 5006             # the dashboard, opened on the embedded Ξc+ toy
"""
CUT_HELP = ("selection applied before anything else, e.g. \"pt > 2 and abs(eta) < 0.8\": columns, numbers, "
            "comparisons, and/or/not, + - * / ** %%, abs sqrt log exp hypot arctan2…")
WEIGHTS_HELP = ("column of event weights (generator, reweighting, sWeights): read beside the features, never "
                "modelled; without it a column named like a weight is left out of the features")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Addresses that only this machine reaches."""


def _features(text: str | None) -> list[str] | None:
    return [f.strip() for f in text.split(",") if f.strip()] if text else None


def _settings(pairs: list[str], flag: str) -> dict[str, str]:
    values = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} takes NAME=VALUE, got '{pair}'")
        values[key.strip()] = value.strip()
    return values


def _parsed_settings(args, **flags) -> dict:
    """``--set NAME=VALUE`` pairs with JSON values (numbers, lists…), plain text otherwise, each
    overridden by its own option when that is given (``--seed 2`` beats ``--set seed=1``)."""
    import json

    settings = {}
    for key, text in _settings(args.set, "--set").items():
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    flags.update(time_limit=args.time_limit, device=args.device, seed=args.seed)
    return {**settings, **{key: value for key, value in flags.items() if value is not None}}


def _port(text: str) -> int:
    """A TCP port for ``--port`` (argparse prints the refusal as a usage error, exit 2)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is a whole number from 1 to 65535, not '{text}'")
    return int(text)


def _seed(text: str) -> int:
    """A random seed for ``--seed``: a whole number from 0 to 2**32 - 1 (numpy's and torch's range)."""
    if not text.isdigit() or int(text) > SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {SEED_MAX}, not '{text}'")
    return int(text)


def _at_least_one(args, *names: str) -> None:
    """Refuse a count option below 1 (``--n``, ``--chunk-rows``) before anything is loaded."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _check_output(path: Path, overwrite: bool, suffixes: tuple[str, ...]) -> None:
    from recogan_app.files import check_writable

    if path.suffix.lower() not in suffixes:
        raise InputError(f"output must end with {' or '.join(suffixes)}", path=path)
    if path.exists() and not overwrite:
        raise InputError("exists already", path=path, hint="pass --overwrite to replace it")
    check_writable(path)


def _load_mc(path, *, tree=None, features=None, cut=None, weights=None, derive=None, drop_invalid=False,
             check=None):
    """:func:`~recogan_app.data.sources.load_mc`, saying on stderr what the cut kept, how the
    events are weighted, which columns it left out and what ``--drop-invalid`` dropped: after
    ``check(sample)``, which may refuse it, so that a refusal is one line with nothing before it."""
    from recogan_app.data.sources import load_mc

    sample = load_mc(path, tree=tree, features=features, cut=cut, weights=weights, derive=derive,
                     drop_invalid=drop_invalid)
    if check is not None:
        check(sample)
    path = sample.source
    if sample.cut is not None:
        print(f"{path}: {sample.selected()}", file=sys.stderr)
    if sample.weights is not None:
        print(f"{path}: {len(sample):,} rows weighted by '{weights}': Σw {sample.weights.sum():.6g}, effective "
              f"sample size (Σw)²/Σw² {sample.n_effective:,.0f}", file=sys.stderr)
    if sample.skipped:
        print(f"{path}: left out {sample.left_out()} (--features names the columns to use)", file=sys.stderr)
    if sample.n_dropped:
        print(f"{path}: dropped {sample.n_dropped:,} rows with NaN/inf values "
              f"({', '.join(f'{c}: {n}' for c, n in sample.invalid_counts.items())})", file=sys.stderr)
    return sample


def _independent_of(run):
    """A ``_load_mc`` check refusing a reference that holds the run's training file, before any notice."""
    return lambda sample: [run.independent_reference(path) for path in sample.files]


TOYS = {"toy-xic": "Ξc+ candidates", "toy-pid": "tracks (PID: DLLs given species, p, eta, n_tracks)",
        "toy-wjet": "W+jet events (reco_* given gen_*)"}
"""The embedded tabular toys ``recogan data`` writes (module ``recogan_app.data.toy_*``) and what a row is."""


def cmd_data(args) -> int:
    if args.toy == "toy-zdc":
        return _data_toy_zdc(args)
    import importlib

    if args.conditions_from:
        raise InputError("--conditions-from goes with toy-zdc")
    if args.features and args.toy != "toy-xic":
        raise InputError("--features goes with toy-xic")
    toy = importlib.import_module(f"recogan_app.data.{args.toy.replace('-', '_')}")
    out = Path(args.out)
    _check_output(out, args.overwrite, (".parquet",))
    options = {"n_features": args.features} if args.features else {}
    frame = toy.generate(n=toy.DEFAULT_N if args.n is None else args.n, seed=args.seed, **options)
    from recogan_app.files import write_atomic

    write_atomic(out, lambda tmp: frame.to_parquet(tmp, index=False))
    print(f"wrote {len(frame):,} {TOYS[args.toy]} × {frame.shape[1]} columns to {out}")
    return 0


RESUMED_KEEP = ("data", "out", "tree", "features", "cut", "weights", "derive", "conditions", "model", "config",
                "transform", "set", "time_limit", "device", "seed", "drop_invalid", "overwrite")
"""``train`` options a resumed training takes from the interrupted one, never from the command line."""


def _origin(args, kind: str, data_files) -> dict:
    """What ``--resume`` needs to read the same data again: the options, the files read (absolute
    paths: a glob or a folder is not expanded again) and each file's SHA-256."""
    from recogan_app.files import file_sha256

    def absolute(path) -> str:
        return str(Path(path).resolve()) if Path(path).is_file() else str(path)

    data = [absolute(path) for path in data_files or args.data]
    conditions = args.conditions and absolute(args.conditions)
    read = [path for path in (*data, conditions) if path and Path(path).is_file()]
    return {"kind": kind, "tree": args.tree, "drop_invalid": args.drop_invalid, "data": data,
            "conditions": conditions, "sha256": {path: file_sha256(path) for path in read}}


def _take_over(args):
    """``--resume RUN_DIR``: (partial folder, its record, the options it was started with), or None
    when RUN_DIR is a finished run with nothing to resume. Data files that changed are refused."""
    from recogan_app.files import file_sha256
    from recogan_app.run import take_over

    given = [f"--{name.replace('_', '-')}" for name in RESUMED_KEEP if getattr(args, name) not in (None, False, [])]
    if given:
        raise InputError(f"{', '.join(given)} cannot go with --resume: a resumed training keeps the data, settings "
                         "and destination it was started with")
    found = take_over(args.resume)
    if found is None:
        return None
    partial, record = found
    origin = record["origin"]
    for path, digest in origin["sha256"].items():
        path = Path(path)
        if not path.is_file():
            raise InputError("is gone: the interrupted training read its data from it", path=path)
        if file_sha256(path) != digest:
            raise InputError("has changed since the training started (its SHA-256 differs): a resumed training "
                             "must read the same data", path=path, hint="start a new training instead")
    started = {**vars(args), "out": args.resume, "overwrite": record["overwrite"], "kind": origin["kind"],
               **{k: origin.get(k) for k in ("data", "conditions", "tree", "drop_invalid")}}
    return partial, record, argparse.Namespace(**started)


def cmd_train(args) -> int:
    import time

    started = time.monotonic()  # --time-limit bounds the command from here: reading the data counts
    resume = record = None
    if args.resume:
        found = _take_over(args)
        if found is None:
            print(f"{args.resume}: the training is complete, nothing to resume")
            return 0
        resume, record, args = found
    elif not (args.data and args.out):
        raise InputError("train needs --data and --out (or --resume RUN_DIR to continue a killed training)")
    else:
        from recogan_app.run import check_destination

        _check_cut(args.cut)
        check_destination(args.out, args.overwrite)  # refused now, not after reading the data or the trials
    if args.kind == "zdc":
        if args.model not in (None, *ZDC_MODELS):
            raise InputError(f"--model {args.model} is a model of tabular data; --kind zdc has {' and '.join(ZDC_MODELS)}")
        return _train_zdc(args, started, resume, record)
    if getattr(args, "profile", None):
        raise InputError("--profile sizes a --kind zdc training; tabular training has no profiles")
    if args.model not in (None, "auto", *MODELS):
        raise InputError(f"--model {args.model} is a model of --kind zdc; tabular data has {', '.join(MODELS)} and auto")
    from recogan_app.families import FAMILIES
    from recogan_app.families.recipe import fit_to_run
    from recogan_app.families.tabular import heldout_summary
    from recogan_app.preprocessing import parse_spec
    from recogan_app.training.callbacks import ProgressBar
    from recogan_app.training.control import Deadline

    if resume is not None:
        family = FAMILIES[record["kind"]]
        candidates = [family(family.config_class.from_dict(record["config"], source=str(resume / "resume.json")))]
    else:
        from recogan_app.families.choice import auto_models

        kinds = (list(auto_models(bool(args.conditions)).values()) if args.model == "auto"
                 else [MODELS[args.model or "gan"]])
        candidates = [FAMILIES[kind](_tabular_config(FAMILIES[kind].config_class, args, auto=len(kinds) > 1))
                      for kind in kinds]
    config = candidates[0].config  # the candidates differ in their own settings only, not in the data's
    for column, spec in config.transforms.items():  # a bad spec refused before the data is read
        parse_spec(spec, column=column)
    sample = _load_mc(args.data, tree=args.tree, features=config.columns, cut=config.cut, weights=config.weights,
                      derive=config.derive, drop_invalid=args.drop_invalid,
                      check=lambda sample: _check_trainable(candidates[0], sample))
    from recogan_app.data.derived import disagreements, suggest

    for suggestion in suggest(sample.frame, sample.derived):
        print(f"{sample.source}: {suggestion.notice()}", file=sys.stderr)
    for warning in disagreements(sample.frame, sample.derived):
        print(f"WARNING {sample.source}: {warning}", file=sys.stderr)
    family, choice = candidates[0], record.get("model_choice") if record else None
    if len(candidates) > 1:
        from recogan_app.families.choice import choose_family, trial_seconds

        picked = choose_family(sample, candidates, trial_seconds(config.time_limit))
        print(f"--model auto: {picked.summary()}")
        family, choice = next(c for c in candidates if c.kind == picked.kind), picked.record()
    config = family.config
    progress = ProgressBar(config.max_epochs, config.time_limit, file=sys.stderr)
    run = fit_to_run(family, sample, args.out, callbacks=[progress], overwrite=args.overwrite,
                     deadline=Deadline(config.time_limit, start=started),
                     origin=record["origin"] if record else _origin(args, "tabular", sample.files), resume=resume,
                     choice=choice)
    metrics = run.metrics()
    print(_trained(run))
    print(heldout_summary(metrics))
    return 0


def _check_trainable(family, sample) -> None:
    """Refuse now what the training would refuse of ``sample`` later (negative weights, columns,
    a transform of a column that is not modelled), before any notice is printed."""
    from recogan_app.errors import closest

    family.usable(sample)
    modelled = [*(family.config.conditions or []), *family.free]
    for column in family.config.transforms:
        if column not in modelled:
            raise InputError("has a --transform but is not a modelled column", path=sample.source, column=column,
                             hint=closest(column, modelled))


def _trained(run) -> str:
    """The first summary line of a finished training: why and when it stopped, with the batch size
    and patience it used (scaled to a small sample)."""
    from recogan_app.training.schedule import describe, describe_fit

    fit, schedule = run.info["fit"], run.info["schedule"]
    return (f"run written to {run.path} ({fit['elapsed_s']:.0f} s, {run.info['device']}): "
            f"{describe_fit(fit, schedule['steps_per_epoch'])}; {describe(schedule)}")


def _tabular_config(config_class, args, *, auto: bool):
    """The config of ``train``'s options for one family. With ``--model auto`` (``auto``) each
    candidate takes the ``--set`` settings it has (a flow's ``spline_bins`` is not the GAN's);
    one that no candidate has is refused, and a config file, which belongs to one family, too."""
    from recogan_app.config import TabularSettings
    from recogan_app.data.derived import parse_derive
    from recogan_app.families import FAMILIES

    if auto and args.config:
        raise InputError("--config goes with --model gan or flow: --model auto trains both families",
                         hint="give the settings with --set NAME=VALUE")
    config = config_class.from_file(args.config) if args.config else config_class()
    transforms = {**config.transforms, **_settings(args.transform, "--transform")}
    settings = _parsed_settings(args, features=_features(args.features), conditions=_features(args.conditions),
                                cut=args.cut, weights=args.weights, transforms=transforms if args.transform else None,
                                derive={**config.derive, **parse_derive(args.derive)} if args.derive else None)
    if auto:
        known = {name for kind in MODELS.values() for name in FAMILIES[kind].config_class.param}
        TabularSettings.from_dict({k: v for k, v in settings.items() if k not in known})  # refuses the unknown
        settings = {k: v for k, v in settings.items() if k in config_class.param}
    return config.updated(**settings)


def _shared_settings(args, family) -> tuple[dict, int]:
    """The settings every training of a scan or ensemble shares (``--config``, then ``--set`` and the
    options), and the seed from which each training's derives."""
    settings = _parsed_settings(args)
    seed = settings.pop("seed", 0)
    if not (isinstance(seed, int) and 0 <= seed <= SEED_MAX):
        raise InputError(f"a seed is a whole number from 0 to {SEED_MAX}, not {seed!r}")
    return {**(family.config_class.from_file(args.config).to_dict() if args.config else {}), **settings}, seed


def cmd_scan(args) -> int:
    import functools

    from recogan_app import scan
    from recogan_app.families import FAMILIES

    grid = scan.parse_grid(args.grid)
    family = FAMILIES[args.kind]
    base, seed = _shared_settings(args, family)
    trainings = scan.plan(grid, kind=args.kind, base=base, repeats=args.repeats, seed=seed)
    data = str(Path(args.data).absolute())  # the workers may start elsewhere
    if args.kind == "zdc":
        from recogan_app.data.zdc import load_zdc as load
    else:
        from recogan_app.data.sources import load_mc

        load = functools.partial(load_mc, features=None if "features" in grid else base.get("features"),
                                 cut=None if "cut" in grid else base.get("cut"),
                                 weights=None if "weights" in grid else base.get("weights"), derive=base.get("derive"))
    gpu = base.get("device") == "cuda"
    with scan.connect(args.scheduler, workers=args.workers, cluster=args.cluster, gpu=gpu) as client:
        print(f"{len(trainings)} trainings ({len(trainings) // args.repeats} grid points × {args.repeats} repeats) "
              f"on {client.scheduler.address}; runs in {args.out}", file=sys.stderr, flush=True)
        table = scan.run_scan(client, functools.partial(load, data), trainings, args.out,
                              resources={"GPU": 1} if gpu else None,
                              report=lambda line: print(line, file=sys.stderr, flush=True))
    print(scan.summary(table, list(grid), family.headline))
    print(f"results table: {Path(args.out) / scan.RESULTS}")
    return 0


def cmd_ensemble(args) -> int:
    import functools

    from recogan_app import ensemble, scan
    from recogan_app.data.sources import load_mc
    from recogan_app.families import FAMILIES

    _at_least_one(args, "generate_rows", "bins")
    base, seed = _shared_settings(args, FAMILIES[MODELS[args.model]])
    trainings = ensemble.plan(args.members, kind=MODELS[args.model], settings=base, seed=seed)
    load = functools.partial(load_mc, str(Path(args.data).absolute()), features=base.get("features"),
                             cut=base.get("cut"), weights=base.get("weights"), derive=base.get("derive"))
    gpu = base.get("device") == "cuda"
    with scan.connect(args.scheduler, workers=args.workers, cluster=args.cluster, gpu=gpu) as client:
        print(f"{args.members} members on bootstrap resamples on {client.scheduler.address}; runs in {args.out}",
              file=sys.stderr, flush=True)
        table = scan.run_scan(client, load, trainings, args.out, resources={"GPU": 1} if gpu else None,
                              report=lambda line: print(line, file=sys.stderr, flush=True))
    failed = table["status"].isin(["failed", "cancelled"]).sum()
    if failed:
        print(f"{failed} of {args.members} members did not finish (see {Path(args.out) / scan.RESULTS}); "
              "the ensemble is the others", file=sys.stderr)
    summary, bins = ensemble.Ensemble.load(args.out).assess(args.generate_rows, args.bins)
    ensemble.write_results(args.out, summary, bins)
    print(ensemble.table(summary))
    for line in summary["warnings"]:
        print(f"WARNING: {line}")
    print(f"results: {Path(args.out) / ensemble.RESULTS}, per bin {ensemble.TABLE}, figure {ensemble.FIGURE}")
    return 0


def cmd_generate(args) -> int:
    from recogan_app.families import run_kind

    if run_kind(args.run) in ZDC_MODELS.values():  # what the run is decides which options are wrong
        return _generate_zdc(args)
    from tqdm.auto import tqdm

    from recogan_app.export import write_parquet  # after the ZDC branch: its imports are a second of startup
    from recogan_app.files import write_atomic

    _at_least_one(args, "n", "chunk_rows")
    run = _tabular_run(args.run, "generate", args.device)
    out = Path(args.out)
    rows = _rows(args, run)
    _check_output(out, args.overwrite, (".parquet",))
    n = rows if isinstance(rows, int) else len(rows)

    outside = []

    def counted(chunks):
        for chunk in chunks:
            outside.append(run.outside_cut(chunk))
            yield chunk

    def write(tmp: str) -> None:
        with tqdm(total=n, unit="row", unit_scale=True, desc="generating", file=sys.stderr) as bar:
            write_parquet(tmp, counted(run.iter_generate(rows, seed=args.seed, chunk_rows=args.chunk_rows)),
                          progress=bar.update)

    write_atomic(out, write, overwrite=args.overwrite)
    given_by = f" given the conditions of {args.conditions}" if run.conditions else ""
    print(f"wrote {n:,} synthetic rows × {len(run.features)} features{given_by} to {out}")
    if outside and None not in outside and sum(outside):
        _warn_outside_cut(run, sum(outside), n, "of the")
    return 0


def _warn_outside_cut(run, outside: int, n: int, of: str) -> None:
    """Say that generated rows fail the training's cut (a derived or non-box cut leaks; the MC had none)."""
    print(f"WARNING: {outside:,} {of} {n:,} rows ({outside / n:.1%}) fail the training's cut "
          f"'{run.info['data']['cut']}' (the MC had none): apply it to the synthetic rows as to the MC")


def _rows(args, run):
    """What ``generate`` and ``export`` generate: ``--n`` rows, or for a conditional run one row per
    row of ``--conditions FILE`` (its conditions' columns, read as any MC file)."""
    if run.conditions and (args.n is not None or args.conditions is None):
        raise InputError(f"is a conditional run: it generates one row per row of --conditions FILE (a table of "
                         f"{', '.join(run.conditions)}), no --n", path=args.run)
    if not run.conditions and (args.conditions is not None or args.n is None):
        raise InputError("is an unconditional tabular run: --n (rows to generate) is required, --conditions is not "
                         "taken", path=args.run)
    if not run.conditions:
        return args.n
    return run.read_conditions(args.conditions, tree=_tree_of(args.conditions, args.tree, run)).frame


def cmd_hist(args) -> int:
    import math

    import numpy as np

    from recogan_app import histograms
    from recogan_app.ensemble import OVERSOLD, Ensemble
    from recogan_app.files import write_atomic

    out = Path(args.out)
    _check_output(out, args.overwrite, (".root",))
    _at_least_one(args, "n", "bins")
    if args.edges is not None and args.range is not None:
        raise InputError("--edges gives every bin: --range goes with --bins")
    if args.scale_to is not None and not (math.isfinite(args.scale_to) and args.scale_to > 0):
        raise InputError(f"--scale-to must be a positive number of events, got {args.scale_to:g}")
    edges = None if args.edges is None else [_number(x, "--edges") for x in args.edges.split(",")]
    if args.ensemble is not None:
        source = Ensemble.load(args.ensemble, device=args.device)
        heldout = lambda: source.heldout  # noqa: E731
        make = lambda feature, feature_edges: histograms.of_ensemble(source, feature, feature_edges, args.n)  # noqa: E731
    else:
        source = _tabular_run(args.run, "hist", args.device)
        heldout = source.heldout
        make = lambda feature, feature_edges: histograms.of_run(source, feature, feature_edges, args.n,  # noqa: E731
                                                                seed=args.seed)
    made, warnings = [], []
    for feature in args.feature:
        if feature not in source.features:
            raise InputError(f"is not a feature of {args.ensemble or args.run} (its features: "
                             f"{', '.join(source.features)})", column=feature)
        feature_edges = edges if edges is not None else (
            np.linspace(*args.range, args.bins + 1) if args.range is not None
            else histograms.default_edges(heldout(), feature, args.bins))
        h = make(feature, feature_edges)  # edges checked there
        line = (f"{feature}: {len(h.counts)} bins over [{h.edges[0]:g}, {h.edges[-1]:g}], {args.n:,} generated "
                f"events{' per member' if args.ensemble else ''}, {h.counts.sum():,.0f} inside; errors: {h.errors_from}")
        if h.n_effective is not None:
            low, high = h.n_effective_interval
            line += f"; N_eff {h.n_effective:,.0f} [{low:,.0f}-{high:,.0f}]"
            if args.n > OVERSOLD * high:
                warnings.append(f"WARNING {feature}: {args.n:,} generated events carry the information of only "
                                f"~{h.n_effective:,.0f} MC events (N_eff): the errors say so, the counts do not")
        print(line)
        made.append(h if args.scale_to is None else h.scaled(args.scale_to / args.n))
    if args.ensemble is None:
        warnings.append("WARNING: one run's errors are " + histograms.ONE_RUN + "; train an ensemble "
                        "(recogan ensemble) and pass --ensemble for errors that include it (seed 004)")
    provenance = {"recogan": __version__, "command": "hist", "run": args.run, "ensemble": args.ensemble,
                  "seed": args.seed, "scale_to": args.scale_to, "histograms": [h.record() for h in made],
                  "warnings": warnings}
    write_atomic(out, lambda tmp: histograms.write_root(tmp, made, provenance), overwrite=args.overwrite)
    for warning in warnings:
        print(warning, file=sys.stderr)
    print(f"wrote {len(made)} TH1D histogram(s) ({', '.join(histograms.object_name(h.feature) for h in made)}) and "
          f"the TObjString {histograms.PROVENANCE_KEY!r} to {out}")
    return 0


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{option} takes comma-separated numbers, got {text!r}") from None


def _tabular_run(path, command: str, device: str = "cpu"):
    """The run of tabular data (GAN, flow or quantile) at ``path`` (``command`` takes no other family's run)."""
    from recogan_app.families import load_run
    from recogan_app.families.tabular import TabularRun
    from recogan_app.training.device import resolve_device

    run = load_run(path, device=resolve_device(device))
    if not isinstance(run, TabularRun):
        raise InputError(f"is a {run.kind} run: {command} takes tabular runs", path=path)
    return run


def _check_cut(cut: str | None) -> None:
    """A bad ``--cut`` refused at once: before the slow imports and before any file is opened."""
    from recogan_app.data.selection import Selection

    if cut is not None:
        Selection(cut)


def cmd_validate(args) -> int:
    _check_cut(args.cut)
    from datetime import datetime, timezone

    from recogan_app.ensemble import Results
    from recogan_app.files import write_atomic
    from recogan_app.metrics.distributions import check_reference_rows
    from recogan_app.report import check_figure_folder, write_figures, write_report
    from recogan_app.validation import validate, validate_run

    for path, suffix in ((args.json, ".json"), (args.report, ".html")):
        if path:
            _check_output(Path(path), args.overwrite, (suffix,))
    if args.figures:
        check_figure_folder(args.figures)
    if args.n is not None and (args.run is None or args.n < 1):
        raise InputError("--n takes a positive number of rows and goes with --run")
    features = _features(args.features)
    run = None
    ensemble = Results.read(args.ensemble) if args.ensemble else None
    if args.run:
        run = _tabular_run(args.run, "validate")
        features = features or run.features
        for name in features:
            if name not in run.features:
                raise InputError("is not a feature of this run", path=args.run, column=name,
                                 hint=f"it generates {', '.join(run.features)}")
        if ensemble is not None:
            ensemble.check_run(run.info, args.run)
        features = run.conditions + features  # a conditional run generates given the reference's conditions
    args.reference, args.tree = _reference(args, run)
    provenance = {"reference": args.reference + (f" (tree {args.tree})" if args.tree else "")}
    weights = args.weights or (run.weight_column if run else None)  # a weighted run: its weighted MC
    reference = _load_mc(args.reference, tree=args.tree, features=features, cut=args.cut, weights=weights,
                         drop_invalid=args.drop_invalid, check=run and _independent_of(run))
    if run:
        trained_on = run.info["data"].get("cut")
        heldout = [Path(f).resolve() for f in reference.files] == [(run.path / "heldout.parquet").resolve()]
        if trained_on != reference.cut and not heldout:  # the held-out split is selected already
            print(f"note: the run was trained on {_selection(trained_on)}, the reference holds "
                  f"{_selection(reference.cut)}: --cut selects the reference as the training MC was, to compare "
                  "like with like", file=sys.stderr)
    if reference.cut is not None:
        provenance["selection (--cut)"] = reference.cut
    if weights is not None:
        provenance["event weights"] = f"column '{weights}' (effective sample size {reference.n_effective:,.0f})"
    reference, weights = reference.frame, reference.weights
    check_reference_rows(len(reference), args.reference)
    if run:
        n = args.n or len(reference)
        seed = run.stream_seed("validation") if args.seed is None else args.seed
        baseline_train, note = run.training_rows()
        provenance.update({"synthetic": f"{n:,} rows generated by run {args.run} (seed {seed})",
                           "MC events the model was trained on": run.info["data"]["n_train"]})
    else:
        seed = args.seed or 0
        synthetic = _load_mc(args.synthetic, features=list(reference.columns), cut=args.cut,
                             drop_invalid=args.drop_invalid).frame
        baseline_train, note = None, "a synthetic file does not say which MC trained it"
        provenance["synthetic"] = args.synthetic
    if baseline_train is None:
        note = f"fitted on the reference itself: {note}"
        print(f"note: copula baseline {note}", file=sys.stderr)
    provenance["copula baseline"] = note
    if run:
        scored = (f"{reference.shape[1] - len(run.conditions)} targets given {len(run.conditions)} conditions"
                  if run.conditions else f"{reference.shape[1]} features")
        print(f"generating {n:,} rows from {args.run} and validating them against {len(reference):,} MC rows × "
              f"{scored}", file=sys.stderr)
        validation = validate_run(run, n, reference=reference, weights=weights, training=baseline_train, seed=seed)
    else:
        print(f"validating {len(synthetic):,} synthetic rows against {len(reference):,} MC rows × "
              f"{reference.shape[1]} features", file=sys.stderr)
        validation = validate(reference, synthetic, baseline_train=baseline_train, seed=seed, weights=weights)
    print(validation.summary())
    more = {}
    if ensemble is not None:
        more["ensemble"] = ensemble.statistics(validation.n_synthetic)
        provenance["ensemble"] = args.ensemble
        _effective_statistics(more["ensemble"])
    if args.json:
        write_atomic(args.json, lambda tmp: Path(tmp).write_text(validation.to_json(**more)))
        print(f"wrote {args.json}")
    if args.report:
        provenance.update({"seed": seed, "recogan": __version__,
                           "written": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        write_report(validation, args.report, title=f"Validation of {provenance['synthetic']}", provenance=provenance,
                     ensemble=ensemble)
        print(f"wrote {args.report}")
    if args.figures:
        written, style = write_figures(validation, args.figures, ensemble=ensemble, overwrite=args.overwrite)
        print(f"wrote {len(written)} figures (PDF and PNG) to {args.figures} ({style})")
    return 0


def _reference(args, run) -> tuple[str, str | None]:
    """``validate``'s MC and its tree: ``--reference`` (read from the tree the run was trained on
    when it holds one of that name and ``--tree`` is not given), else the run's held-out split."""
    if args.reference is None:
        if run is None:
            raise InputError("--synthetic needs --reference, the MC file to compare it with")
        if args.tree is not None:
            raise InputError("--tree goes with --reference: the run's held-out split has no trees")
        heldout = run.path / "heldout.parquet"
        if not heldout.is_file():
            raise InputError("is missing: the run's held-out MC test split is gone", path=heldout,
                             hint="pass --reference with an independent MC file")
        return str(heldout), None
    return args.reference, _tree_of(args.reference, args.tree, run)


def _tree_of(path, tree: str | None, run) -> str | None:
    """The tree to read of ``path`` (validate's and export's ``--reference``, generate's and export's
    ``--conditions``): ``tree`` (``--tree``), else the one the run was trained on when the file
    holds one of that name."""
    from recogan_app.data.sources import list_keys

    trained = run and run.info["data"].get("tree")
    if tree is None and trained:
        try:
            return trained if trained in list_keys(path) else None
        except InputError:  # a glob, a missing file…: the reading says what is wrong
            pass
    return tree


def _selection(cut: str | None) -> str:
    return "every event (no cut)" if cut is None else f"the events passing the cut '{cut}'"


def cmd_export(args) -> int:
    from recogan_app.export import export, provenance_path, validation_summary
    if args.drop_invalid and not args.reference:
        raise InputError("--drop-invalid goes with --reference (the run's held-out split has no NaN/inf)")
    run = _tabular_run(args.run, "export", args.device)
    rows = _rows(args, run)
    reference = _load_mc(args.reference, tree=_tree_of(args.reference, args.tree, run),
                         features=run.conditions + run.features, cut=run.info["data"].get("cut"),
                         weights=run.weight_column, drop_invalid=args.drop_invalid,
                         check=_independent_of(run)) if args.reference else None  # selected as the training MC was
    provenance = export(run, args.out, rows, reference=reference, require=args.require, force=args.force,
                        seed=args.seed, chunk_rows=args.chunk_rows, overwrite=args.overwrite, progress=True,
                        ensemble=args.ensemble, conditions_source=str(args.conditions))
    given_by = f" given the conditions of {args.conditions}" if run.conditions else ""
    print(f"wrote {provenance['rows']:,} synthetic rows × {len(run.features)} features{given_by} to {args.out} "
          f"(provenance: {provenance_path(args.out)})")
    print(validation_summary(provenance))
    outside = provenance["validation"]["outside_cut"]
    if outside:
        _warn_outside_cut(run, outside, provenance["validation"]["n_reference"], "of the validation sample's")
    print(provenance["statement"])
    _effective_statistics(provenance["effective_statistics"])
    return 0


def _effective_statistics(statistics: dict | str) -> None:
    """An ensemble's numbers for a sample (:meth:`~recogan_app.ensemble.Results.statistics`) in one
    line, its warnings on stderr."""
    from recogan_app.ensemble import describe

    print(describe(statistics))
    for line in () if isinstance(statistics, str) else statistics["warnings"]:
        print(f"recogan: warning: {line}", file=sys.stderr)


def _check_logins(value: str) -> None:
    """Refuse a ``--basic-auth`` file that is missing or not ``{user: password}`` JSON: Panel would
    take a mistyped file name as the password itself, or fail at the first login."""
    import json

    path = Path(value)
    if not path.is_file():
        if path.suffix.lower() == ".json":
            raise InputError("does not exist", path=value, hint="--basic-auth takes a password or a JSON file")
        return
    try:
        logins = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot be read as JSON ({exc})", path=value) from None
    if not (isinstance(logins, dict) and logins
            and all(isinstance(k, str) and isinstance(v, str) and v for k, v in logins.items())):
        raise InputError('is not a JSON object {"user": "password", ...}', path=value)


def cmd_serve(args) -> int:
    """The dashboard, safe by default: this machine only (127.0.0.1, websocket origin localhost),
    downloads streamed from disk, uploads capped; ``--basic-auth`` puts Panel's login in front."""
    import dataclasses
    import secrets
    import tempfile

    import panel as pn

    from recogan_app.data.sources import list_keys
    from recogan_app.ui.app import TITLE, create_app
    from recogan_app.ui.downloads import static_dirs
    from recogan_app.ui.server import Limits, share_malloc_arenas
    from recogan_app.ui.wire import WEBSOCKET_MAX_MESSAGE_BYTES, guard_decoder

    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise InputError("is not a folder", path=args.data_root)
    if args.data is not None:  # read as train --data reads it (a URL too): a missing file or extra exits 2 here
        list_keys(args.data)
    if args.max_upload_mb is not None and args.max_upload_mb < 1:
        raise InputError(f"--max-upload-mb must be at least 1, got {args.max_upload_mb}")
    limits = Limits(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Limits)
                       if getattr(args, field.name) is not None})
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="recogan-serve-"))
    host = "localhost" if args.address in LOOPBACK else args.address
    origins = args.allow_websocket_origin or [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    auth = {}
    if args.basic_auth:  # Panel's login page; the secret signs its cookie (random: logins end with the server)
        _check_logins(args.basic_auth)
        auth = dict(basic_auth=args.basic_auth, cookie_secret=args.cookie_secret or secrets.token_urlsafe(32))

    guard_decoder()  # before any page can send a message: see recogan_app/ui/wire.py
    share_malloc_arenas()

    def app():  # a function, called once per browser session
        return create_app(data=args.data, data_root=args.data_root, workdir=workdir,
                          max_upload_mb=args.max_upload_mb, limits=limits)

    try:
        server = pn.serve(app, port=args.port, address=args.address, websocket_origin=origins, show=args.show,
                          title=TITLE, static_dirs=static_dirs(workdir), start=False,
                          websocket_max_message_size=WEBSOCKET_MAX_MESSAGE_BYTES, **auth)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise InputError(f"cannot listen on {args.address}:{args.port}: {exc.strerror}",
                         hint="choose another --port or --address") from None
    if args.address not in LOOPBACK and not args.basic_auth:
        print(f"recogan: warning: listening on {args.address} without --basic-auth: whoever reaches this "
              "machine can use the dashboard and read its files", file=sys.stderr)
    print(f"recogan dashboard on http://{host}:{args.port}/ (Ctrl-C stops it); work folder {workdir}", flush=True)
    server.start()
    server.io_loop.start()
    return 0


def _data_toy_zdc(args) -> int:
    from recogan_app.data import toy_zdc
    from recogan_app.data.zdc import ZDCSample, load_conditions

    out = Path(args.out)
    _check_output(out, args.overwrite, (".npz",))
    if args.conditions_from:
        if args.n is not None:
            raise InputError("--n and --conditions-from exclude each other: the conditions fix the events")
        conditions = load_conditions(args.conditions_from)
        sample = ZDCSample(toy_zdc.simulate(conditions, seed=args.seed), conditions)
    else:
        n = toy_zdc.DEFAULT_N if args.n is None else args.n
        if n < 1:
            raise InputError(f"--n must be a positive number of events, got {n}")
        sample = toy_zdc.generate(n, seed=args.seed)
    sample.save(out)
    empty = int((sample.photon_sums == 0).sum())
    print(f"wrote {len(sample):,} toy ZP events (56 × 30 photon counts, 9 conditions; {empty:,} empty) to {out}")
    return 0


def _train_zdc(args, started: float, resume=None, record=None) -> int:
    from recogan_app.data.zdc import load_zdc
    from recogan_app.families import FAMILIES
    from recogan_app.families.recipe import fit_to_run
    from recogan_app.training.callbacks import ProgressBar
    from recogan_app.training.control import Deadline
    from recogan_app.families.zdc import profile_text
    from recogan_app.training.schedule import plural

    for flag, value in (("--tree", args.tree), ("--features", args.features), ("--transform", args.transform),
                        ("--drop-invalid", args.drop_invalid), ("--cut", args.cut), ("--weights", args.weights),
                        ("--derive", args.derive)):
        if value:
            raise InputError(f"{flag} is an option of tabular training, not of --kind zdc")
    if len(args.data) > 1:
        raise InputError("--kind zdc reads one --data file (images and conditions)")
    family = FAMILIES[record["kind"] if resume is not None else ZDC_MODELS[args.model or "vae"]]
    if resume is not None:
        config = family.config_class.from_dict(record["config"], source=str(resume / "resume.json"))
    else:
        if args.profile and family.kind != "zdc":
            raise InputError("--profile sizes the GAN: add --model gan (the Poisson VAE, --kind zdc's default, has "
                             "one size)")
        config = family.config_class.from_file(args.config) if args.config else family.config_class()
        config = config.updated(**_parsed_settings(args, profile=args.profile))
    sample = load_zdc(args.data[0], conditions=args.conditions)
    print(f"{args.data[0]}: {len(sample):,} events; {sample.note}", file=sys.stderr)
    progress = ProgressBar(config.max_epochs, config.time_limit, file=sys.stderr)
    run = fit_to_run(family(config), sample, args.out, callbacks=[progress], overwrite=args.overwrite,
                     deadline=Deadline(config.time_limit, start=started),
                     origin=record["origin"] if record else _origin(args, "zdc", args.data), resume=resume)
    m = run.metrics()
    print(_trained(run))
    if run.kind == "zdc":
        print(f"profile {profile_text(run.config)}")
    channels = ", ".join(f"{m[f'ws_ch{k}']:.2f}" for k in range(1, 6))
    draws = plural(m["draws"], "noise draw") + (f" of {m['draws_requested']}: the time limit cut the rest"
                                                if m.get("draws_requested", m["draws"]) > m["draws"] else "")
    print(f"held-out test ({m['sample_size']:,} events, {draws}): five-channel WS "
          f"{m['ws_mean']:.3f} photons (ch1–5: {channels}); empty responses {m['empty_generated']:.0f} "
          f"generated vs {m['empty_real']:.0f} real; hottest-pixel error {m['hottest_pixel_error']:.2f} px")
    return 0


def _generate_zdc(args) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from recogan_app.data.zdc import ZDCSample, load_conditions
    from recogan_app.families import load_run
    from recogan_app.training.device import resolve_device

    if args.n is not None or args.conditions is None:
        raise InputError("is a ZDC run: it generates one image per row of --conditions FILE (no --n)", path=args.run)
    if args.tree is not None:
        raise InputError("--tree is an option of tabular runs: a ZDC run reads its conditions' arrays by name")
    out = Path(args.out)
    _check_output(out, args.overwrite, (".npz",))
    run = load_run(args.run, device=resolve_device(args.device))
    conditions = load_conditions(args.conditions)
    chunks = []
    with tqdm(total=len(conditions), unit="event", unit_scale=True, desc="generating", file=sys.stderr) as bar:
        for chunk in run.iter_generate(conditions, seed=args.seed):
            chunks.append(chunk)
            bar.update(len(chunk))
    ZDCSample(np.concatenate(chunks), conditions).save(out)
    print(f"wrote {len(conditions):,} generated ZP responses (56 × 30 photon counts) with their conditions to {out}")
    return 0


def _many_trainings(parser, what: str) -> None:
    """The options of a command training many times on Dask (scan, ensemble)."""
    parser.add_argument("--data", required=True, help="MC file the workers can read at this path (a shared disk)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="a setting every training shares (repeatable)")
    parser.add_argument("--config", help="JSON or TOML file of the settings every training shares")
    parser.add_argument("--time-limit", type=float, metavar="SEC", help="seconds each training may take")
    parser.add_argument("--device", choices=DEVICES, help="cuda: each training asks its worker for a GPU")
    parser.add_argument("--seed", type=_seed, help=f"the {what}'s seed, from which each training's derives (default 0)")
    parser.add_argument("--scheduler", default="local", metavar="local|ADDRESS",
                        help="local: a new cluster of --workers processes on this machine (default); or the address "
                             "of a running Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--workers", type=int, help="processes of a local cluster (default: one per core) or jobs of "
                                                    "--cluster htcondor (default 1)")
    parser.add_argument("--cluster", choices=["htcondor"], help="submit the workers as HTCondor jobs (dask-jobqueue)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recogan", description=__doc__.splitlines()[0].replace("``", ""),
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"recogan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="write an embedded toy MC to a file")
    data.add_argument("toy", choices=[*TOYS, "toy-zdc"], help="which toy")
    data.add_argument("--n", type=int, help="rows or events (default: toy-xic seed 000's 531,548; toy-pid "
                                            "500,000; toy-wjet 200,000; toy-zdc 20,000)")
    data.add_argument("--conditions-from", metavar="OTHER.npz",
                      help="toy-zdc: re-simulate exactly the conditions of this file with new randomness "
                           "(two simulations of the same conditions give the toy's noise floor)")
    data.add_argument("--seed", type=_seed, default=0)
    data.add_argument("--features", type=int, choices=[8, 12], help="toy-xic: 8 (default) or 12 features")
    data.add_argument("--out", required=True, help="FILE.parquet (toy-xic, toy-pid, toy-wjet) or FILE.npz (toy-zdc)")
    data.add_argument("--overwrite", action="store_true")
    data.set_defaults(func=cmd_data)

    train = commands.add_parser("train", help="train a generator on an MC file; writes a run directory",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = train.add_argument_group("data")
    source.add_argument("--data", action="append", metavar="FILE|GLOB|DIR",
                        help="MC file (.root .parquet .csv .h5 .npz), a quoted glob (\"mc/*.root\") or a folder; "
                             "repeatable: the files are read as one sample and must hold the same columns. "
                             "Or an embedded toy: toy-xic, toy-xic-12")
    source.add_argument("--tree", help="ROOT TTree / HDF5 key / npz array to read")
    source.add_argument("--features", "--targets", dest="features",
                        help="comma-separated columns to model, the targets of a conditional model (default: all "
                             "numeric but the conditions, identifiers such as event numbers left out)")
    source.add_argument("--cut", metavar="EXPR", help=CUT_HELP)
    source.add_argument("--weights", metavar="COLUMN", help=WEIGHTS_HELP + "; training needs them >= 0")
    source.add_argument("--derive", action="append", metavar="NAME=FORMULA",
                        help="a column computed exactly from the generated ones instead of modelled, e.g. "
                             "\"pt1 = hypot(px1, py1)\" or \"M = mass(E1 + E2, px1 + px2, py1 + py2, pz1 + pz2)\" "
                             "(the language of --cut; repeatable; train suggests the identities the data satisfy)")
    source.add_argument("--drop-invalid", action="store_true", help="drop rows with NaN/inf instead of refusing")
    source.add_argument("--kind", choices=["tabular", "zdc"], default="tabular",
                        help="tabular features (default) or proton-ZDC images (.npz .h5 with "
                             "images (N, 56, 30) and the 9 conditions)")
    source.add_argument("--conditions", help="tabular: comma-separated columns a conditional model is given, never "
                                             "generates (e.g. species,p,eta,n_tracks); zdc: conditions table, when "
                                             "not inside --data (.npz .h5 .csv .parquet)")
    model = train.add_argument_group("settings")
    model.add_argument("--model", choices=[*MODELS, "auto", *(m for m in ZDC_MODELS if m not in MODELS)],
                       help="tabular data: the GAN (default), a normalizing flow (maximum likelihood), seed 003's "
                            "mean + quantile regression (quantile: needs --conditions), or auto: the one a "
                            "classifier tells least from the monitor split after a short trial of each; "
                            "--kind zdc: vae, a VAE with Poisson photon counts (default), or gan, seed 001's SDI-GAN")
    model.add_argument("--config", help="JSON or TOML file of settings (see config.json in any run)")
    model.add_argument("--transform", action="append", metavar="FEATURE=SPEC",
                       help="preprocessing of one feature, e.g. cos_pa=arccos+quantile (repeatable)")
    model.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="any setting, e.g. lambda_ks=2 or adversarial=wgan-gp (repeatable)")
    model.add_argument("--time-limit", type=float, metavar="SEC",
                       help="seconds the whole command may take: pretraining, fit, held-out evaluation, writing")
    model.add_argument("--device", choices=DEVICES)
    model.add_argument("--profile", choices=["auto", *ZDC_PROFILES],
                       help="zdc: sizes for the hardware (default auto: gpu with CUDA, cpu without; seed001: the paper's)")
    model.add_argument("--seed", type=_seed)
    output = train.add_argument_group("output")
    output.add_argument("--out", help="run directory to create")
    output.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory (a recogan run only), swapped in when complete")
    output.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the killed training of RUN_DIR from its last checkpoint, "
                             "with the data and settings it was started with")
    train.set_defaults(func=cmd_train)

    sc = commands.add_parser("scan", help="many trainings on Dask: a grid of settings × repeated seeds",
                             epilog="examples:\n  recogan scan --data xic.parquet --grid lambda_ks=0.5,1,2 --grid "
                                    "lambda_corr=1,3 --repeats 3 --time-limit 600 --out scans/lambda\n"
                                    "  recogan scan --data zdc.npz --kind zdc --grid lambda_diversity=0.01,0.1,1 "
                                    "--scheduler tcp://10.0.0.5:8786 --out scans/div",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    sc.add_argument("--kind", choices=["tabular", "zdc"], default="tabular", help="what the data holds")
    sc.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2",
                    help="a setting and its values, one axis of the grid (repeatable; model=gan,... picks the family)")
    sc.add_argument("--repeats", type=int, default=1, help="trainings per grid point, each with its own seed")
    _many_trainings(sc, "scan")
    sc.add_argument("--out", required=True, help="scan directory: one run directory per training and "
                                                 "results.parquet; rerun the command to finish an interrupted scan")
    sc.set_defaults(func=cmd_scan)

    ens = commands.add_parser("ensemble", help="train K generators on bootstrap resamples: error bars validated on "
                                               "held-out MC and the effective statistics of a synthetic sample",
                              epilog="example:\n  recogan ensemble --data xic.parquet --members 10 --time-limit 600 "
                                     "--generate-rows 100000 --out ensembles/xic",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    ens.add_argument("--members", type=int, required=True, metavar="K", help="generators to train (at least 2)")
    ens.add_argument("--model", choices=list(MODELS), default="gan", help="the model family of every member")
    ens.add_argument("--generate-rows", type=int, default=100_000, metavar="N",
                     help="events each member generates for the prediction (default 100000)")
    ens.add_argument("--bins", type=int, default=20, help="bins per feature, each holding an equal share of the "
                                                         "generated events (default 20)")
    _many_trainings(ens, "ensemble")
    ens.add_argument("--out", required=True, help="ensemble directory: one run directory per member, results.parquet, "
                                                  "ensemble.json, ensemble.parquet and ensemble.png; rerun to finish")
    ens.set_defaults(func=cmd_ensemble)

    gen = commands.add_parser("generate", help="sample a trained run to a Parquet file")
    gen.add_argument("--run", required=True, help="run directory")
    gen.add_argument("--n", type=int, help="rows to generate (tabular runs)")
    gen.add_argument("--conditions", metavar="FILE",
                     help="conditional runs: file of the run's conditions (.parquet .csv .root .h5 .npz), one row "
                          "generated per row, the conditions copied through; ZDC runs: file with the 9 conditions "
                          "(.npz .h5 .csv .parquet), one image per row")
    gen.add_argument("--tree", help="ROOT TTree / HDF5 key of --conditions (default: the run's tree, when the file "
                                    "has it)")
    gen.add_argument("--out", required=True, help="FILE.parquet, or FILE.npz for a ZDC run")
    gen.add_argument("--seed", type=_seed, help="fixes the sample (default: fresh randomness)")
    gen.add_argument("--device", default="auto", choices=DEVICES,
                     help="where the generator runs (default: a GPU when present)")
    gen.add_argument("--chunk-rows", type=int, default=500_000, help="rows generated and written at a time")
    gen.add_argument("--overwrite", action="store_true")
    gen.set_defaults(func=cmd_generate)

    hist = commands.add_parser("hist", help="histograms of generated events as ROOT TH1D, with their errors")
    made_by = hist.add_mutually_exclusive_group(required=True)
    made_by.add_argument("--run", help="run directory: errors of the generated sample only")
    made_by.add_argument("--ensemble", metavar="ENS_DIR",
                         help="ensemble directory (recogan ensemble): errors with the training sample's fluctuation")
    hist.add_argument("--feature", action="append", required=True, help="feature to histogram (repeatable)")
    hist.add_argument("--n", type=int, required=True, help="events to generate (per member with --ensemble)")
    hist.add_argument("--bins", type=int, default=50, help="equal bins over --range (default 50)")
    hist.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                      help="default: the held-out MC's 0.1-99.9 %% range of each feature")
    hist.add_argument("--edges", metavar="E0,E1,...", help="every bin edge (variable bins), instead of --bins/--range")
    hist.add_argument("--scale-to", type=float, metavar="EVENTS",
                      help="scale counts and errors so that the generated events stand for EVENTS (a yield)")
    hist.add_argument("--out", required=True, help="FILE.root")
    hist.add_argument("--seed", type=_seed, help="fixes the sample (--run; default: fresh randomness)")
    hist.add_argument("--device", default="cpu", choices=DEVICES)
    hist.add_argument("--overwrite", action="store_true")
    hist.set_defaults(func=cmd_hist)

    val = commands.add_parser("validate", help="compare a synthetic sample with the MC; print, JSON and HTML report",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    val.add_argument("--reference", help="MC file to compare with, never trained on (default with --run: the run's "
                                         "held-out split, RUN_DIR/heldout.parquet)")
    val.add_argument("--tree", help="ROOT TTree / HDF5 key of --reference (default with --run: the run's tree, "
                                    "when the file holds one of that name)")
    val.add_argument("--cut", metavar="EXPR", help=CUT_HELP + "; applied to --reference and --synthetic")
    val.add_argument("--weights", metavar="COLUMN", help=WEIGHTS_HELP.replace("column", "column of --reference", 1)
                     + "; negative weights are accepted (default with --run: the run's weight column)")
    synthetic = val.add_mutually_exclusive_group(required=True)
    synthetic.add_argument("--synthetic", help="file of synthetic rows (.parquet .root .csv .h5 .npz)")
    synthetic.add_argument("--run", help="run directory to generate the synthetic rows from")
    val.add_argument("--drop-invalid", action="store_true",
                     help="drop rows with NaN/inf from --reference and --synthetic instead of refusing")
    val.add_argument("--n", type=int, help="rows to generate with --run (default: as many as the reference)")
    val.add_argument("--features", help="comma-separated features to compare (default: all of the reference/run)")
    val.add_argument("--json", help="write every number to this FILE.json")
    val.add_argument("--report", help="write the standalone report to this FILE.html")
    val.add_argument("--figures", metavar="DIR", help="write the report's figures as PDF and PNG files to this folder "
                     "(for a note; HEP style with the extra [hep])")
    val.add_argument("--ensemble", metavar="ENS_DIR", help="a `recogan ensemble` of the run's MC and split: its N_eff "
                                                          "table, warnings and ±1σ bands in the report and the JSON")
    val.add_argument("--seed", type=_seed, help="fixes generation, floors, bootstraps and classifier (default: the "
                     "run's validation stream, the dashboard's and run.validate()'s sample; 0 with --synthetic)")
    val.add_argument("--overwrite", action="store_true", help="replace existing --json/--report/--figures files")
    val.set_defaults(func=cmd_validate)

    exp = commands.add_parser("export", help="validate a run, then export a synthetic sample with its provenance")
    exp.add_argument("--run", required=True, help="run directory")
    exp.add_argument("--n", type=int, help="rows to export (unconditional runs)")
    exp.add_argument("--conditions", metavar="FILE", help="conditional runs: file of the run's conditions, one row "
                                                          "exported per row, the conditions copied through")
    exp.add_argument("--out", required=True, help="FILE.parquet, FILE.h5 or FILE.root (+ FILE.provenance.json)")
    exp.add_argument("--reference", help="MC file to validate against, selected by the run's --cut (default: the "
                                         "run's held-out MC)")
    exp.add_argument("--tree", help="ROOT TTree / HDF5 key of --reference and --conditions (default: the run's tree, "
                                    "when the file has it)")
    exp.add_argument("--drop-invalid", action="store_true",
                     help="drop --reference rows with NaN/inf instead of refusing")
    exp.add_argument("--require", default="good", choices=REQUIRABLE,
                     help="validation verdict needed to export (default: good)")
    exp.add_argument("--force", action="store_true", help="export below --require; recorded as forced")
    exp.add_argument("--ensemble", metavar="ENS_DIR", help="a `recogan ensemble` of the run's MC and split: its N_eff, "
                                                          "coverage and warnings go to the provenance")
    exp.add_argument("--seed", type=_seed, help="fixes the sample (default: fresh randomness, recorded)")
    exp.add_argument("--device", default="auto", choices=DEVICES,
                     help="where the generator runs (default: a GPU when present)")
    exp.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows generated and written at a time")
    exp.add_argument("--overwrite", action="store_true")
    exp.set_defaults(func=cmd_export)

    srv = commands.add_parser("serve", help="open the dashboard: load MC, tune, train live, validate, export",
                              epilog="on SWAN: recogan serve --port 5006 --allow-websocket-origin swan.cern.ch "
                                     "(the host name in your browser's address bar), then open "
                                     "https://swan.cern.ch/user/<name>/proxy/5006/")
    srv.add_argument("--data", help="MC opened with the page: a file, or a root:// or https:// URL as train --data "
                                    "reads it (default: the embedded Ξc+ toy, toy-xic)")
    srv.add_argument("--data-root", metavar="DIR", help="files under DIR can be picked in the page; nothing "
                                                        "else is read (default: none, only --data and uploads)")
    srv.add_argument("--workdir", metavar="DIR", help="where runs, uploads, reports and exports go; its exports "
                                                      "and reports are served for download (default: a new "
                                                      "temporary folder)")
    srv.add_argument("--port", type=_port, default=5006)
    srv.add_argument("--address", default="127.0.0.1",
                     help="network address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: all)")
    srv.add_argument("--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
                     help="host the browser reaches the server by, when not localhost (repeatable; "
                          "default: localhost and 127.0.0.1 at --port)")
    srv.add_argument("--basic-auth", metavar="PASSWORD|FILE",
                     help="ask for a password (any user name) or, given a JSON file {user: password}, a user's "
                          "password (Panel's login page; a file keeps the password out of the process list)")
    srv.add_argument("--cookie-secret", metavar="SECRET",
                     help="signs the login cookie (default: random, so logins end when the server stops)")
    srv.add_argument("--max-upload-mb", type=int, metavar="MB",
                     help="largest file a page may upload (default: 200; refused in the browser, with a notice)")
    srv.add_argument("--show", action=argparse.BooleanOptionalAction, default=False,
                     help="open a browser tab (default: no)")
    caps = srv.add_argument_group("limits", "what one page may ask of the server; beyond them, a notice says no")
    caps.add_argument("--max-trainings", dest="trainings", type=int, metavar="N",
                      help="trainings at once on the server, all pages together (default: cores - 1, at least 2)")
    caps.add_argument("--max-validate-rows", dest="validate_rows", type=int, metavar="N",
                      help="generated rows the Validation tab may compare, held in memory (default: 1,000,000)")
    caps.add_argument("--max-export-rows", dest="export_rows", type=int, metavar="N",
                      help="rows the Export tab may write (default: 10,000,000)")
    caps.add_argument("--max-time-limit", dest="time_limit_s", type=float, metavar="S",
                      help="longest training time limit a page may set; trainings without one get it "
                           "(default: 3600)")
    caps.add_argument("--stop-grace", dest="stop_grace_s", type=float, metavar="S",
                      help="seconds a training has to stop after Stop before it is killed (default: 10)")
    srv.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    try:
        return args.func(args)
    except InputError as exc:
        print(f"recogan: error: {exc}", file=sys.stderr)
        return 2
    except ExportRefused as exc:
        print(f"recogan: export refused: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("recogan: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug, not the user's fault: show everything
        traceback.print_exc()
        print("recogan: internal error (please report it with the traceback above)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
