"""Real stand-ins for the outside world, used by the tests and the load tests (RTSP cameras)."""
