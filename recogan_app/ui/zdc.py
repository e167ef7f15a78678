"""The ZDC tab: train a proton-ZDC model live (the Poisson VAE, or seed 001's GAN) and compare real
and generated responses to the same conditions.

Left: the ZP events (the embedded toy or a file under the data root), the model, the time limit
(the GAN: its three penalties with their λ and on/off switches, and its profile), Start / Pause /
Resume / Stop and the other settings.
Right, live while training (:class:`~recogan_app.ui.live.LiveView`): the five-channel WS per
channel over the toy's noise floor, the losses, a gallery of real events beside the generated
responses to their conditions, and the channel photon-sum histograms. When the run is saved, the
gallery and histograms switch to held-out events, which the model never saw.
"""

from __future__ import annotations

import asyncio
from functools import partial

import pandas as pd
import panel as pn
import param

from recogan_app.markup import escape_markdown
from recogan_app.families.zdc import ZDCRun
from recogan_app.ui.live import PREPARING, LiveView, duration, settings_cards
from recogan_app.ui.plots import (CHANNELS, WS_CAPTION, Gallery, HistogramComparison, channel_ws_rows, loss_curves,
                                  zdc_ws_curves)
from recogan_app.ui.state import ACTIVE
from recogan_app.ui.zdc_state import SWITCHES, TOY, ZDCSession

SCHEDULE = {
    "Schedule": ["max_epochs", "patience", "snapshot_rows", "eval_draws", "seed", "device"],
    "Data": ["min_photon_sum", "test_fraction", "channels"],
}
SETTINGS = {
    "gan": {"Architecture and optimiser": ["latent_dim", "generator_channels", "batch_size", "lr_generator",
                                           "lr_discriminator", "discriminator_steps", "aux_epochs", "aux_lr"],
            **SCHEDULE},
    "vae": {"Architecture and optimiser": ["latent_dim", "decoder_width", "batch_size", "learning_rate", "kl_start",
                                           "kl_warm_up", "exemplars"], **SCHEDULE},
}
"""Each model's settings in the collapsed cards; the time limit (and the GAN's λs) sit above them."""
CHANNELS_CAPTION = ("The ZP's five readout channels: ch1–ch4, the tower PMTs, each read every other fibre of "
                    "one quadrant; ch5, the common PMT, the fibres in between (seed 001's convention, see "
                    "`metrics.zdc`). Compared: the snapshot's training events and the generated responses to "
                    "their conditions while training; held-out events (up to 2,000) once the run is saved.")
PROFILE_CAPTION = ("Profile: the sizes (generator width, batch, learning rates, aux pretraining, evaluation) for "
                   "the hardware. auto: gpu with CUDA, cpu without; seed001: the paper's 128-channel generator. "
                   "A size typed in the settings below wins over the profile's.")
VAE_CAPTION = ("Poisson VAE: each pixel's photon count is Poisson given the particle's nine parameters and a "
               "latent z of the shower, drawn from training events with nearby parameters; one decoder pass per "
               "response. On the 2-core CPU, 5 minutes reach 3–5 × the toy's noise floor, 30 minutes 1.7–2.8 × "
               "(README, \"A second ZDC family\"); the same sizes on every device.")
LABELS = {"lambda_diversity": ("diversity (SDI-GAN)", "λ_div"), "lambda_intensity": ("intensity", "λ_in"),
          "lambda_aux": ("aux regressor", "λ_aux")}


def _model_of(run: ZDCRun) -> str:
    """What trained ``run``: the GAN with its profile, or the Poisson VAE."""
    return f"GAN, profile {run.config.profile}" if run.kind == "zdc" else "Poisson VAE"


class ZDCView(LiveView):
    """ZP events, λ switches and controls on the left; live WS, losses, gallery and histograms on the right."""

    state = param.ClassSelector(class_=ZDCSession)
    channel = param.Selector(default="ch5", objects=list(CHANNELS), doc="Channel of the photon-sum histogram.")

    LIVE = {
        "ws": zdc_ws_curves,
        "losses": loss_curves,
        "gallery": Gallery,
        "channels": partial(HistogramComparison, reference_label="real", x_label="{feature} photons",
                            title="{feature} photon sum: real vs generated"),
    }
    PANES = {"gallery": {}}  # the gallery keeps its own size: stretched, its frames would lose their aspect
    CSS = "recogan-zdc"

    def __init__(self, **params):
        super().__init__(**params)
        state = self.state
        self._gallery_shape = None
        self.load_button = pn.widgets.Button(label="Load", color="primary", css_classes=["recogan-zdc-load"])
        self.load_button.on_click(self.load)
        self.other_button = pn.widgets.Button(label="Other held-out events", css_classes=["recogan-zdc-other"])
        self.other_button.on_click(self.other_events)
        data = pn.Column(
            "### ZP events",
            pn.widgets.Select.from_param(state.param.source, label="ZP events", sizing_mode="stretch_width"),
            pn.widgets.IntInput.from_param(state.param.toy_events, label="Toy events", step=500,
                                           visible=state.param.source.rx().rx.pipe(lambda s: s == TOY)),
            pn.widgets.IntInput.from_param(state.param.max_events, label="Events to train on (0: all)", step=1000),
            self.load_button, pn.pane.Markdown(self.sample_text, styles={"font-size": "small"}),
            sizing_mode="stretch_width")
        gan, vae = state.configs["gan"], state.configs["vae"]
        penalties = [pn.Row(pn.widgets.Checkbox.from_param(state.param[switch], label=LABELS[name][0], width=170),
                            pn.widgets.FloatInput.from_param(gan.param[name], label=LABELS[name][1], width=150,
                                                             disabled=state.param[switch].rx().rx.pipe(lambda on: not on)))
                     for name, switch in SWITCHES.items()]
        time_limit = {"label": "Time limit (s)", "width": 150}
        models = {
            "gan": pn.Column("### Loss weights (λ)", *penalties, pn.Row(
                pn.widgets.Select.from_param(gan.param.profile, label="Profile", width=150,
                                             css_classes=["recogan-zdc-profile"]),
                pn.widgets.FloatInput.from_param(gan.param.time_limit, **time_limit)),
                pn.pane.Markdown(PROFILE_CAPTION, styles={"font-size": "small"}), sizing_mode="stretch_width"),
            "vae": pn.Column(pn.widgets.FloatInput.from_param(vae.param.time_limit, **time_limit), pn.pane.Markdown(
                VAE_CAPTION, styles={"font-size": "small"}), sizing_mode="stretch_width"),
        }
        chosen = state.param.model.rx()
        controls = pn.Column(
            data, pn.widgets.Select.from_param(state.param.model, label="Model", css_classes=["recogan-zdc-model"],
                                               sizing_mode="stretch_width"),
            *(pn.Column(models[name], visible=chosen.rx.pipe(lambda m, name=name: m == name),
                        sizing_mode="stretch_width") for name in models),
            *self.controls(),
            *(pn.Column(*settings_cards(state.configs[name], SETTINGS[name], open_first=False),
                        visible=chosen.rx.pipe(lambda m, name=name: m == name), sizing_mode="stretch_width")
              for name in models), width=380)
        self.gallery_area = pn.Column(
            pn.Row(pn.pane.Markdown("### Real vs generated, same conditions"), self.other_button),
            pn.pane.Markdown(self.gallery_text, styles={"font-size": "small"}), self.slots["gallery"],
            sizing_mode="stretch_width")
        plots = pn.Column(
            pn.Row(pn.Column(self.slots["ws"], pn.pane.Markdown(WS_CAPTION, styles={"font-size": "small"}, width=560)),
                   self.slots["losses"], sizing_mode="stretch_width"),
            self.gallery_area,
            pn.Row(pn.Column(pn.widgets.Select.from_param(self.param.channel, label="Photon sum of channel", width=200),
                             self.slots["channels"]),
                   pn.pane.Markdown(CHANNELS_CAPTION, styles={"font-size": "small"}, width=420)),
            sizing_mode="stretch_width")
        self.layout = pn.Row(controls, plots, sizing_mode="stretch_width")
        state.param.watch(self._on_history, "history")  # set before the comparison: the cheap curves draw first
        state.param.watch(self._on_comparison, "comparison")
        state.param.watch(self._on_run, "run")
        state.param.watch(self._enable_other, ["run", "status"])
        self.param.watch(self._on_channel, "channel")
        self._enable_other()
        self.draw_blank()

    def prepare(self) -> None:
        """The toy's simulation and noise floor, in a worker thread before Start (remembered for it)."""
        state = self.state
        if state.sample is None and state.source == TOY:
            state.read()
        state.noise_floor()

    # -- data ----------------------------------------------------------------------------------
    async def load(self, *_):
        """Simulate or read the chosen events in a thread, then use them on the UI thread."""
        self.layout.loading = True
        try:
            with self.state.reporting():
                sample = await asyncio.to_thread(self.state.read)
                self.state.use(sample, simulated=self.state.source == TOY)
        finally:
            self.layout.loading = False

    @param.depends("state.sample", "state.config", "state.config.min_photon_sum")
    def sample_text(self) -> str:
        sample = self.state.sample
        if sample is None:
            return "Nothing loaded yet: Start loads the toy."
        config = self.state.config
        sums, cut = sample.photon_sums, config.min_photon_sum
        return (f"{len(sample):,} events, {int((sums == 0).sum()):,} empty; {int((sums >= cut).sum()):,} with at "
                f"least {cut} photon(s) are split into training, monitor ({config.monitor_fraction:.0%}: the "
                f"per-epoch snapshots) and held-out test ({config.test_fraction:.0%}) events.")

    # -- after training ------------------------------------------------------------------------
    async def show_heldout(self, *_):
        """Compare held-out events with the run's responses to their conditions, in a thread."""
        self.gallery_area.loading = True
        try:
            with self.state.reporting():
                self.state.comparison = await asyncio.to_thread(self.state.compare_heldout)
        finally:
            self.gallery_area.loading = False

    async def other_events(self, *_):
        self.state.gallery_seed += 1
        await self.show_heldout()

    def _on_run(self, event):
        if isinstance(event.new, ZDCRun):
            pn.state.execute(self.show_heldout)

    def _enable_other(self, *_):
        self.other_button.disabled = not isinstance(self.state.run, ZDCRun) or self.state.status in ACTIVE

    # -- live plots ----------------------------------------------------------------------------
    def on_start(self) -> None:
        self._gallery_shape = None

    def _on_history(self, event):
        if event.new is not None and len(event.new) and self.state.snapshots:
            self.show("ws", pd.concat([channel_ws_rows(s, self.state.floor) for s in self.state.snapshots],
                                      ignore_index=True))

    def _on_comparison(self, event):
        comparison = event.new
        if comparison is None:
            return
        shape = comparison.generated.shape[:2]
        if shape != self._gallery_shape:  # a plot keeps its first frame's size: another layout needs a new one
            self.figures.pop("gallery", None)
            self._gallery_shape = shape
        self.show("gallery", comparison)
        self._on_channel()

    def _on_channel(self, *_):
        comparison = self.state.comparison
        if comparison is not None:
            k = CHANNELS.index(self.channel)
            self.show("channels", (comparison.channels_real[:, k], comparison.channels_generated[:, k], self.channel))

    @param.depends("state.comparison")
    def gallery_text(self) -> str:
        comparison = self.state.comparison
        if comparison is None:
            return ("*The first epoch's snapshot shows real monitor events (held out from training) and the "
                    "generated responses to them.*")
        return (f"{comparison.label}. Each frame: one event, its real response on the left, the generated "
                f"response(s) to the same conditions on the right, on one colour scale: the share of the frame's "
                f"brightest pixel, whose photon count the title gives.")

    @param.depends("state.status", "state.history", "state.eta_s", "state.run")
    def status_text(self) -> str:
        """Status, epoch, time, ETA and the latest five-channel WS, empty and hottest-pixel figures;
        the held-out figures once the run is saved."""
        state, history = self.state, self.state.history
        text = f"**{state.status}**"
        if (history is None or not len(history)) and state.status in ACTIVE:
            text += PREPARING
        if history is not None and len(history):
            last = history.iloc[-1]
            floor = f" (toy floor {state.floor.mean():.2f})" if state.floor is not None else ""
            text += (f" · epoch {int(last.epoch)} · {duration(last.elapsed_s)} · ETA {duration(state.eta_s)}"
                     f" · WS {last.ws_mean:.2f} photons{floor} · empty {last.empty_generated:.0f} generated, "
                     f"{last.empty_real:.0f} real of {int(last.sample_size):,} · hottest pixel off by "
                     f"{last.hottest_pixel_error:.1f} px")
        if isinstance(state.run, ZDCRun):
            m = state.run.metrics()
            text += (f"<br>held-out test ({m['sample_size']:,} events, {m['draws']} draws): WS {m['ws_mean']:.2f} "
                     f"± {m['ws_draw_std']:.2f} · empty {m['empty_generated']:.1f} · hottest pixel off by "
                     f"{m['hottest_pixel_error']:.1f} px · {_model_of(state.run)}<br>"
                     f"run: {escape_markdown(state.run.path)}")
        return text

    def __panel__(self):
        return self.layout
