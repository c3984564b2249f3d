"""The Serve application: ``serve build deployments.app:app`` generates serve_config.yaml from it.

Settings come from the usual sources: ``SURVEILLANCE_CONFIG`` (a YAML file, e.g.
deployments/cluster-settings.yaml), ``SURVEILLANCE__DETECTOR__…`` environment variables, defaults.
The pipeline itself (``surveillance-ray run``) deploys the same application with its own settings.
"""

import os

from deployments.detector import detector_app
from surveillance_ray.config import load_settings

app = detector_app(load_settings(os.environ.get("SURVEILLANCE_CONFIG")).detector)
