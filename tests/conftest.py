import os

from hypothesis import settings

pytest_plugins = ["support.jaeger", "support.browser"]

# Under CI the fuzz tests draw the same cases every run, so a red CI always means a change
# broke something; locally each run draws new cases and keeps looking for new crashes.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
    settings.load_profile("ci")
