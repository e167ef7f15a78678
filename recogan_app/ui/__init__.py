"""The Panel dashboard: the same views served (``recogan serve``) and inline in notebooks.

- ``state``          :class:`Session`: what one user loaded, chose, trains and trained (no Panel)
- ``plots``          HoloViews elements as pure functions of plain data
- ``data``, ``preprocessing``, ``training``, ``validation``, ``export``: one Viewer per tab
- ``dashboard``      :class:`Dashboard`, the tabs over one session
- ``app``            ``create_app()`` for ``panel serve`` / ``recogan serve``
"""

from recogan_app.ui.dashboard import Dashboard
from recogan_app.ui.state import Session

__all__ = ["Dashboard", "Session"]
