"""Hypothesis profiles: a quick one for local runs, a thorough one for CI.

Pick one with HYPOTHESIS_PROFILE=ci; the default is "default".
"""

import os

from hypothesis import settings

settings.register_profile("default", max_examples=100)
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
