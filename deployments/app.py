"""The Serve application: ``serve build deployments.app:app`` generates serve_config.yaml from it.

Settings come from the usual sources (``SURVEILLANCE__DETECTOR__…`` env, defaults); the pipeline
itself (``surveillance-ray run``) deploys the same application with its own settings.
"""

from deployments.detector import detector_app
from surveillance_ray.config import DetectorConfig

app = detector_app(DetectorConfig())
