"""The Panel dashboard: the same views served (``recogan serve``) and inline in notebooks.

- ``state``          :class:`Session`: what one user loaded, chose, trains and trained (no Panel)
- ``zdc_state``      :class:`ZDCSession`: the same for the ZDC GAN (ZP events, λ switches, gallery)
- ``plots``          HoloViews elements as pure functions of plain data
- ``live``           what the training tabs share: controls, progress, live plots fed by streams
- ``data``, ``preprocessing``, ``training``, ``validation``, ``export``, ``zdc``: one Viewer per tab
- ``dashboard``      :class:`Dashboard`, the tabs over one session
- ``downloads``      exports and reports served from disk, and links to them
- ``app``            ``create_app()`` for ``panel serve`` / ``recogan serve``
"""

from recogan_app.ui.dashboard import Dashboard
from recogan_app.ui.state import Session
from recogan_app.ui.zdc_state import ZDCSession

__all__ = ["Dashboard", "Session", "ZDCSession"]
