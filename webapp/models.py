"""Every model, imported once so that ``Base.metadata`` knows all tables.

Each feature package keeps its tables in ``webapp/<feature>/models.py``; this module
imports all of them, so a new feature needs no edit here.
"""

import importlib
import pkgutil
from pathlib import Path

import webapp

for _info in pkgutil.iter_modules([str(Path(webapp.__file__).parent)]):
    if _info.ispkg and (Path(webapp.__file__).parent / _info.name / "models.py").exists():
        importlib.import_module(f"webapp.{_info.name}.models")
