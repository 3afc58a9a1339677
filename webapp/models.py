"""Every model, imported once so that ``Base.metadata`` knows all tables."""

from webapp.cases.models import Case, CaseEvent, Category  # noqa: F401
from webapp.grid.models import Area, Setting  # noqa: F401
