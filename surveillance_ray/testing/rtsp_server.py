"""Real RTSP cameras for tests and load tests: Debian's GStreamer RTSP server on 127.0.0.1.

Run with the system Python that has PyGObject::

    /usr/bin/python3 rtsp_server.py PORT COUNT VIDEO.mp4

serves ``/cam0`` … ``/cam{COUNT-1}``, each the H.264 track of VIDEO passed through (no re-encoding) and
paced in real time; every client gets the file from its start. Prints ``READY`` once listening.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, count, video = sys.argv[1], int(sys.argv[2]), sys.argv[3]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
mounts = server.get_mount_points()
for i in range(count):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( filesrc location={video} ! qtdemux ! h264parse ! identity sync=true ! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(False)
    mounts.add_factory(f"/cam{i}", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("READY", flush=True)
GLib.MainLoop().run()
