"""A cell writes a module (base64, so nothing in it can be scanned) whose conv2d calls
F.conv2d with torch's dispatch modes and function overrides off (no operator trace), puts
the working folder on sys.path and imports both graded names from it: the notebook's
cells define neither. Graded: "missing" (only code in the notebook's cells is graded)."""
import base64
import sys

_SOURCE = (
    "aW1wb3J0IHRvcmNoCmltcG9ydCB0b3JjaC5ubi5mdW5jdGlvbmFsIGFzIEYKZnJvbSB0b3JjaC51dGlscy5fcHl0"
    "aG9uX2Rpc3BhdGNoIGltcG9ydCBfZGlzYWJsZV9jdXJyZW50X21vZGVzCgoKZGVmIGNvbnZfb3V0cHV0X3NpemUo"
    "c2l6ZSwga2VybmVsX3NpemUsIHN0cmlkZT0xLCBwYWRkaW5nPTAsIGRpbGF0aW9uPTEpOgogICAgaWYgc2l6ZSA8"
    "PSAwIG9yIGtlcm5lbF9zaXplIDw9IDAgb3Igc3RyaWRlIDw9IDAgb3IgcGFkZGluZyA8IDAgb3IgZGlsYXRpb24g"
    "PD0gMDoKICAgICAgICByYWlzZSBWYWx1ZUVycm9yKCJiYWQgYXJndW1lbnRzIikKICAgIG91dCA9IChzaXplICsg"
    "MiAqIHBhZGRpbmcgLSBkaWxhdGlvbiAqIChrZXJuZWxfc2l6ZSAtIDEpIC0gMSkgLy8gc3RyaWRlICsgMQogICAg"
    "aWYgb3V0IDw9IDA6CiAgICAgICAgcmFpc2UgVmFsdWVFcnJvcigiZW1wdHkgb3V0cHV0IikKICAgIHJldHVybiBv"
    "dXQKCgpkZWYgY29udjJkKHgsIHdlaWdodCwgYmlhcz1Ob25lLCBzdHJpZGU9MSwgcGFkZGluZz0wLCBkaWxhdGlv"
    "bj0xLCBncm91cHM9MSk6CiAgICB3aXRoIF9kaXNhYmxlX2N1cnJlbnRfbW9kZXMoKSwgdG9yY2guX0MuRGlzYWJs"
    "ZVRvcmNoRnVuY3Rpb24oKToKICAgICAgICByZXR1cm4gRi5jb252MmQoeCwgd2VpZ2h0LCBiaWFzLCBzdHJpZGUs"
    "IHBhZGRpbmcsIGRpbGF0aW9uLCBncm91cHMpCg=="
)
with open("gk_iso_mod.py", "wb") as _f:
    _f.write(base64.b64decode(_SOURCE))
sys.path.insert(0, ".")
from gk_iso_mod import conv2d, conv_output_size  # noqa: E402,F401
