"""The Preprocessing tab: per feature, the suggested transform, a selector to change it and a live
preview of what the networks will see."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from recogan_app.ui.plots import SIZE, density_histogram, literal_title
from recogan_app.ui.state import SPECS, Session


PREVIEW_WIDTH = 430
"""Width of each preview plot: both fit beside the 420-pixel selector column on a 1400-pixel screen."""


class PreprocessingView(Viewer):
    """One spec selector per chosen feature; changing one previews that feature before and after
    its transform, so a spec that does not fit the data (arccos of a momentum) shows at once."""

    state = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        self.selectors = pn.Column(sizing_mode="stretch_width")
        self.preview_feature = pn.widgets.Select.from_param(self.state.param.preview_feature, label="Preview")
        self.layout = pn.Row(
            pn.Column("### Transform per feature", "The suggestion comes from the name and the values; "
                      "every chain ends in a map to a normal distribution.", self.selectors, width=420),
            pn.Column(self.preview_feature, pn.panel(self.preview, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        self._build()

    @param.depends("state.features", "state.suggested", watch=True)
    def _build(self):
        """A selector per chosen feature, labelled with the suggestion."""
        rows = []
        for feature in self.state.features:
            suggested = self.state.suggested[feature]
            select = pn.widgets.Select(label=f"{feature} (suggested: {suggested})",
                                       value=self.state.transforms[feature],
                                       options=list(dict.fromkeys([suggested, *SPECS])), sizing_mode="stretch_width")
            select.param.watch(lambda event, f=feature: self.state.choose_transform(f, event.new), "value")
            rows.append(select)
        self.selectors[:] = rows

    @param.depends("state.preview_feature", "state.transforms")
    def preview(self):
        """The chosen feature before and after its transform, on a subset of the rows."""
        feature = self.state.preview_feature
        if self.state.sample is None or feature is None:
            return hv.Layout([hv.Histogram([])]).opts(title="no data loaded")
        with self.state.reporting():
            raw, transformed = self.state.preview(feature)
            spec = self.state.transforms[feature]
            size = {**SIZE, "width": PREVIEW_WIDTH}
            return (density_histogram(raw, label=feature).opts(title=literal_title(f"{feature} (MC)"), **size)
                    + density_histogram(transformed, label=f"{spec}({feature})").opts(
                        title=literal_title(f"after {spec}"), fill_color="seagreen", **size)).opts(shared_axes=False)
        return hv.Layout([hv.Histogram([])]).opts(
            title=literal_title(f"{feature}: this transform does not fit (see the notice)"))

    def __panel__(self):
        return self.layout
