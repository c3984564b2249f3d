"""A real RTSP camera for tests: Debian's GStreamer RTSP server streaming a video file (H.264 passthrough).

Run with the system Python that has PyGObject (``/usr/bin/python3 rtsp_server.py PORT VIDEO``);
prints ``READY`` once listening on 127.0.0.1:PORT, path ``/cam``. Each client gets the file from the
start, decoded and re-encoded (a keyframe every second), paced in real time.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, video = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={video} ! decodebin ! videoconvert ! identity sync=true "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=1000 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(False)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("READY", flush=True)
GLib.MainLoop().run()
