"""The Serve application: ``serve build deployments.app:app`` generates serve_config.yaml from it.

Settings come from the usual sources: ``SURVEILLANCE_CONFIG`` (a YAML file, relative paths from the
repository root, e.g. deployments/cluster-settings.yaml), ``SURVEILLANCE__DETECTOR__…`` environment
variables, defaults. ``surveillance-ray run`` deploys the same application with its own settings.
"""

import os

from deployments.detector import detector_app
from surveillance_ray.config import PACKAGE_ROOT, load_settings

_file = os.environ.get("SURVEILLANCE_CONFIG")
app = detector_app(load_settings(PACKAGE_ROOT / _file if _file else None).detector)
