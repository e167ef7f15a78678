"""The HTML report: every section, nothing fetched from the network, it renders in a browser offline, and
names from the data show as text."""

import re
import shutil
from html.parser import HTMLParser

import pytest

from recogan_app.errors import InputError
from recogan_app.report import SECTIONS, default_pair_features, write_report
from recogan_app.validation import validate

FAST = {"c2st_options": {"n_estimators": 20, "max_depth": 3}, "n_boot": 20}


@pytest.fixture(scope="module")
def validation(toy_frame):
    return validate(toy_frame.iloc[:1500], toy_frame.iloc[1500:], baseline_train=None, **FAST)


@pytest.fixture(scope="module")
def report(validation, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(validation, path, title="Ξc+ toy <check>", provenance={"reference": "toy seed 0", "seed": 0})
    return path


def test_report_has_every_section_and_figure(report, validation):
    text = report.read_text(encoding="utf-8")
    for key, heading in SECTIONS.items():
        assert f'<section id="{key}"><h2>{heading}</h2>' in text
    assert text.count("<img ") == len(validation.features) + 4  # one histogram per feature + 4 figures
    assert "<title>Ξc+ toy &lt;check&gt;</title>" in text
    assert validation.baseline_verdict.split(" (")[0] in text
    assert "toy seed 0" in text and "indistinguishable from MC fluctuations" in text


def test_report_references_nothing_outside_itself(report):
    text = report.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    sources = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_pair_features_default_to_the_most_flagged_and_are_checked(validation, tmp_path):
    chosen = default_pair_features(validation)
    assert len(chosen) == 4 and len(set(chosen)) == 4
    flagged = validation.model.flagged["pearson"]
    if len(flagged):
        assert chosen[:2] == [flagged.iloc[0].feature_a, flagged.iloc[0].feature_b]
    path = tmp_path / "r.html"
    with pytest.raises(InputError, match="2 to 5 features"):
        write_report(validation, path, title="t", provenance={}, pair_features=validation.features[:6])
    with pytest.raises(InputError, match="'ptt'.*closest: 'pt'"):
        write_report(validation, path, title="t", provenance={}, pair_features=["pt", "ptt"])
    assert not path.exists()  # refused before anything was written


def test_report_loads_in_headless_chromium_offline(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable)
        except sync_api.Error as exc:
            pytest.skip(f"no Chromium for playwright: {exc.message.splitlines()[0]}")
        try:
            page = browser.new_context(offline=True).new_page()
            requested = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            decoded = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
            sections = page.evaluate("[...document.querySelectorAll('section')].map(s => s.id)")
        finally:
            browser.close()
    assert decoded == report.read_text(encoding="utf-8").count("<img ")
    assert sections == list(SECTIONS)
    assert all(url.startswith(("file:", "data:")) for url in requested)


MARKUP_NAMES = {"pt": "<script>window.__pwned=1</script>", "decay_length": "<img src=x onerror=window.__pwned=1>",
                "cos_pa": r'cos "pa" & <b> $\nocommand{x}$'}
"""Column names carrying markup (and TeX that matplotlib cannot parse), as a CSV or ROOT file may hold them."""


def test_names_from_the_data_are_escaped_in_the_report(toy_frame, tmp_path):
    """Column names, the title and provenance values show as text: the parsed page holds no element
    that came from the data (no script, no image but the inlined figures, no extra attribute)."""
    frame = toy_frame[list(MARKUP_NAMES)].rename(columns=MARKUP_NAMES)
    validation = validate(frame.iloc[:600], frame.iloc[600:1200], baseline_train=None, n_boot=5,
                          c2st_options={"n_estimators": 5, "max_depth": 2})
    path = write_report(validation, tmp_path / "r.html", title=f"run of {MARKUP_NAMES['pt']}",
                        provenance={"training data": "/mc/<img src=x onerror=alert(1)>.csv"})

    class Page(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

        def handle_data(self, data):
            self.text.append(data)

    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    assert not {"script", "b"} & {tag for tag, _ in page.tags}
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert images and all(set(attrs) == {"alt", "src"} and attrs["src"].startswith("data:image/png;base64,")
                          for attrs in images)
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    text = "".join(page.text)
    for name in MARKUP_NAMES.values():
        assert name in text  # shown literally, e.g. in the per-feature table
    assert "/mc/<img src=x onerror=alert(1)>.csv" in text and f"run of {MARKUP_NAMES['pt']}" in text


def _figure_files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def three_features(toy_frame):
    frame = toy_frame[["pt", "inv_mass", "cos_pa"]]
    return validate(frame.iloc[:1500], frame.iloc[1500:], baseline_train=None, **FAST)


@pytest.mark.parametrize("hep", [False, True], ids=["plain", "mplhep"])
def test_figures_for_a_note_open_one_pdf_and_png_per_figure(three_features, tmp_path, monkeypatch, hep):
    import sys

    from matplotlib.image import imread

    from recogan_app.report import PLAIN_STYLE, write_figures

    if hep:
        pytest.importorskip("mplhep")
    else:
        monkeypatch.setitem(sys.modules, "mplhep", None)  # as if the extra [hep] were not installed
    validation = three_features
    written, style = write_figures(validation, tmp_path / "figures", pair_features=["pt", "inv_mass"])
    assert (style == PLAIN_STYLE) != hep and style.startswith("HEP style: mplhep") == hep
    stems = [f"histogram_{name}" for name in validation.features] + ["correlations", "pairs", "classifier",
                                                                     "importance"]
    assert _figure_files(tmp_path / "figures") == sorted(f"{s}.{x}" for s in stems for x in ("pdf", "png"))
    assert sorted(p.name for p in written) == _figure_files(tmp_path / "figures")
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".pdf":
            assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF") and b"/Type /Page" in data
        else:
            height, width, _ = imread(path).shape
            assert height > 300 and width > 300
    with pytest.raises(InputError, match="histogram_pt.pdf: exists already"):
        write_figures(validation, tmp_path / "figures")
    assert write_figures(validation, tmp_path / "figures", overwrite=True)[0] == written


def test_axes_are_labelled_in_gev_where_the_name_says_momentum_energy_or_mass(validation):
    from recogan_app.report import axis_label, histogram_figure

    labelled = ("pt", "e", "px", "m", "M", "jet_pt", "mu_e", "mu1_pt", "E2", "inv_mass", "Jet.pz", "reco_met_x",
                "pi_pt_min", "D0_M")
    unlabelled = ("dll_e", "dll_p", "pid_p", "dll_mu", "gen_jet_log_mass", "eta", "pid_prob", "ct", "decay_length",
                  "n_electrons", "n_tracks")
    assert [axis_label(n) for n in labelled] == [f"{n} [GeV]" for n in labelled]
    assert [axis_label(n) for n in unlabelled] == list(unlabelled)  # a DLL, a log or a count has no GeV
    assert histogram_figure("pt", validation).axes[1].get_xlabel() == "pt [GeV]"
    assert histogram_figure("cos_pa", validation).axes[1].get_xlabel() == "cos_pa"


def test_correlation_residuals_read_in_the_same_units_in_titles_numbers_and_colour_bar(validation):
    """The residual panels say ×100 and print residual × 100: their colour bar reads ×100 too (±5, not ±0.05)."""
    from recogan_app.report import _correlation_figure

    figure = _correlation_figure(validation)
    figure.canvas.draw()  # places the ticks and their labels
    bars = [axis for axis in figure.axes if axis.get_ylabel().startswith("residual")]
    residual_panel = next(axis for axis in figure.axes if axis.get_title().startswith("residual synthetic − MC, pearson"))
    assert len(bars) == 2 and residual_panel.get_title().endswith("(×100)")
    for bar in bars:
        assert bar.get_ylabel() == "residual ×100 (saturates at ±5)"
        ticks = {round(value, 3): label.get_text() for value, label in zip(bar.get_yticks(), bar.get_yticklabels())}
        assert ticks[0.04] == "4" and ticks[-0.04] in ("−4", "-4")
    numbers = [text.get_text() for text in residual_panel.texts]
    residual = validation.model.residual["pearson"].to_numpy()
    assert numbers[0] == f"{residual[0, 1] * 100:.0f}"  # the first off-diagonal cell, (0, 1)
