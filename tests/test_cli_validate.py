"""``recogan validate``: a synthetic Parquet or a run against a reference Parquet; bad input exits 2."""

import json
from functools import partial

import pytest

from recogan_app import validation as validation_module
from recogan_app.cli import main

TINY = {"max_epochs": 1, "batch_size": 128, "snapshot_rows": 200, "latent_dim": 8,
        "generator_widths": [16, 16, 16], "discriminator_widths": [16, 16]}


@pytest.fixture(autouse=True)
def fast_validation(monkeypatch):
    """The command with a small classifier and bootstrap, so each call takes seconds."""
    fast = partial(validation_module.validate, c2st_options={"n_estimators": 20, "max_depth": 3}, n_boot=20)
    monkeypatch.setattr(validation_module, "validate", fast)


@pytest.fixture(scope="module")
def files(tmp_path_factory, toy_frame):
    tmp = tmp_path_factory.mktemp("validate")
    paths = {"reference": tmp / "mc.parquet", "synthetic": tmp / "syn.parquet", "partial": tmp / "partial.parquet",
             "five": tmp / "five.parquet", "nan": tmp / "nan.parquet"}
    toy_frame.iloc[:1500].to_parquet(paths["reference"], index=False)
    toy_frame.iloc[:5].to_parquet(paths["five"], index=False)
    toy_frame.iloc[:1500].assign(pt=lambda f: f["pt"].where(f.index != 7)).to_parquet(paths["nan"], index=False)
    toy_frame.iloc[1500:].to_parquet(paths["synthetic"], index=False)
    toy_frame.iloc[1500:].drop(columns="cos_pa").to_parquet(paths["partial"], index=False)
    return paths


def test_validate_a_synthetic_file_writes_json_and_report(files, tmp_path, capsys, toy_frame):
    out_json, out_html = tmp_path / "metrics.json", tmp_path / "report.html"
    assert main(["validate", "--reference", str(files["reference"]), "--synthetic", str(files["synthetic"]),
                 "--json", str(out_json), "--report", str(out_html), "--seed", "2"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(out_json.read_text())
    assert set(metrics["per_feature"]) == set(toy_frame.columns) and metrics["n_reference"] == 1500
    assert "classifier AUC" in captured.out and "copula baseline" in captured.out and "pt " in captured.out
    assert "fitted on the reference itself" in captured.err
    assert '<section id="summary">' in out_html.read_text(encoding="utf-8")


def test_features_subset(files, tmp_path):
    out = tmp_path / "m.json"
    assert main(["validate", "--reference", str(files["reference"]), "--synthetic", str(files["synthetic"]),
                 "--features", "pt,cos_pa", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["per_feature"]) == ["pt", "cos_pa"]


@pytest.mark.parametrize("case, words", [
    ("missing column", ["partial.parquet", "column 'cos_pa'", "not found"]),
    ("missing file", ["nope.parquet", "does not exist"]),
    ("n without run", ["--n", "--run"]),
    ("existing output", ["exists already", "--overwrite"]),
    ("tiny reference", ["five.parquet: has 5 rows", "at least 100 reference rows"]),
    ("NaN reference", ["nan.parquet: column 'pt': has 1 NaN/inf values", "--drop-invalid"]),
])
def test_bad_input_exits_2_with_one_clear_message(case, words, files, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    synthetic = {"missing column": files["partial"],
                 "missing file": tmp_path / "nope.parquet"}.get(case, files["synthetic"])
    reference = {"tiny reference": files["five"], "NaN reference": files["nan"]}.get(case, files["reference"])
    extra = {"n without run": ["--n", "10"]}.get(case, [])
    if case == "existing output":
        out.write_text("{}")
    code = main(["validate", "--reference", str(reference), "--synthetic", str(synthetic),
                 "--json", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)
    assert case == "existing output" or not out.exists()


def test_drop_invalid_drops_reference_rows_as_the_hint_says(files, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["validate", "--reference", str(files["nan"]), "--synthetic", str(files["synthetic"]),
                 "--drop-invalid", "--json", str(out)]) == 0
    assert "nan.parquet: dropped 1 rows with NaN/inf values (pt: 1)" in capsys.readouterr().err
    assert json.loads(out.read_text())["n_reference"] == 1499


def test_validate_a_run_fits_the_copula_on_its_training_split(tmp_path, toy_parquet, files, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    assert main(["train", "--data", str(toy_parquet), "--config", str(config), "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert main(["validate", "--reference", str(run / "heldout.parquet"), "--run", str(run), "--n", "700",
                 "--features", "pt,decay_length,n_its_clusters_pi", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_synthetic"] == 700 and metrics["integer_features"] == ["n_its_clusters_pi"]
    assert metrics["baseline_fitted_on"] == "the training MC (2,400 rows)"
    # one seed, one sample: the library's default validation of the run is the command's, number for number
    from recogan_app.families.tabular import TabularRun

    loaded = TabularRun.load(run)
    library = loaded.validate(700, reference=loaded.heldout(), features=["pt", "decay_length", "n_its_clusters_pi"])
    assert json.loads(library.to_json()) == metrics
    assert main(["validate", "--reference", str(files["reference"]), "--run", str(run),
                 "--features", "pt,nope"]) == 2
    assert "column 'nope': is not a feature of this run" in capsys.readouterr().err


def test_figures_for_a_note_one_pdf_and_png_per_figure(files, tmp_path, capsys):
    folder = tmp_path / "figures"
    command = ["validate", "--reference", str(files["reference"]), "--synthetic", str(files["synthetic"]),
               "--features", "pt,inv_mass,cos_pa", "--figures", str(folder)]
    assert main(command) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in folder.iterdir())
    stems = ["histogram_pt", "histogram_inv_mass", "histogram_cos_pa", "correlations", "pairs", "classifier",
             "importance"]
    assert names == sorted(f"{stem}.{fmt}" for stem in stems for fmt in ("pdf", "png"))
    assert f"wrote 14 figures (PDF and PNG) to {folder} (" in out
    assert main(command) == 2 and "histogram_pt.pdf: exists already" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*command[:-1], str(tmp_path / "file")]) == 2
    assert "file: is not a folder" in capsys.readouterr().err
